"""The requester lookup (``identities.repository.owners_of``) runs on every ticket: PostgreSQL
must keep one plan for it on a connection instead of planning it again at every execution."""

import uuid

from customer_svc.identities import repository as identities


async def test_the_lookup_of_a_requesters_identities_settles_on_one_plan(raw):
    found = []
    for i in range(12):  # PostgreSQL weighs a generic plan after the fifth execution
        wanted = [("email", f"plan.{i}.{uuid.uuid4().hex[:8]}@example.cn")] + ([("phone", f"+86138{i:08d}")] if i % 2 else [])
        found.append(await identities.owners_of(raw, wanted))
    assert found == [{}] * 12
    plans = await raw.fetch("SELECT generic_plans, custom_plans FROM pg_prepared_statements "
                            "WHERE statement LIKE '%FROM customer_identities i%' AND statement LIKE '%wanted%' "
                            "AND statement NOT LIKE '%pg_prepared_statements%'")  # not this query itself
    assert len(plans) == 1, plans
    # the first five are planned for their values; every later one runs the kept plan
    assert (plans[0]["generic_plans"], plans[0]["custom_plans"]) == (7, 5), dict(plans[0])
