from helpdesk_common.migrate import run_env
from sla_svc.db import metadata
from sla_svc.timers import models  # noqa: F401  (registers the tables)

run_env(metadata)
