from helpdesk_common.migrate import run_env
from gateway.db import metadata
from gateway.auth import models  # noqa: F401  (registers the tables)

run_env(metadata)
