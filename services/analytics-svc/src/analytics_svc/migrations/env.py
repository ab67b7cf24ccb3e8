from helpdesk_common.migrate import run_env
from analytics_svc.db import metadata
from analytics_svc.kpis import models  # noqa: F401  (registers the tables)

run_env(metadata)
