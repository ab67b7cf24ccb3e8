from helpdesk_common.migrate import run_env
from notify_svc.db import metadata

run_env(metadata)
