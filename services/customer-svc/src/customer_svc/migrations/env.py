from helpdesk_common.migrate import run_env
from customer_svc.db import metadata
from customer_svc.customers import models  # noqa: F401  (registers the tables)

run_env(metadata)
