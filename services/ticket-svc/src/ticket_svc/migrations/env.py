from helpdesk_common.migrate import run_env
from ticket_svc.db import metadata
from ticket_svc.tickets import models  # noqa: F401  (registers the tables)

run_env(metadata)
