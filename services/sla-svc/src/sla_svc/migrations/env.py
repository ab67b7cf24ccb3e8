from helpdesk_common.migrate import run_env
from sla_svc.db import metadata
from sla_svc.calendars_api import models as _calendars  # noqa: F401  (registers the tables)
from sla_svc.idempotency import models as _idempotency  # noqa: F401
from sla_svc.policies import models as _policies  # noqa: F401
from sla_svc.tickets import models as _tickets  # noqa: F401
from sla_svc.timers import models as _timers  # noqa: F401

run_env(metadata)
