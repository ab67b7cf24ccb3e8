from helpdesk_common.migrate import run_env
from customer_svc.db import metadata
# register the tables
from customer_svc.organizations import models as _organizations  # noqa: F401
from customer_svc.customers import models  # noqa: F401
from customer_svc.attributes import models as _attributes  # noqa: F401
from customer_svc.idempotency import models as _idempotency  # noqa: F401
from customer_svc.imports import models as _imports  # noqa: F401
from customer_svc.interactions import models as _interactions  # noqa: F401
from customer_svc.orders import models as _orders  # noqa: F401

run_env(metadata)
