from helpdesk_common.migrate import run_env
from analytics_svc.db import metadata
from analytics_svc.kpis import models  # noqa: F401  (registers the tables)
from analytics_svc.steps import models as _steps  # noqa: F401

run_env(metadata)
