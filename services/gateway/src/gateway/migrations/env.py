from helpdesk_common.migrate import run_env
from gateway.db import metadata
from gateway.auth import models  # noqa: F401  (registers the tables)
from gateway.stream import models as stream_models  # noqa: F401
from gateway.zendesk import models as zendesk_models  # noqa: F401

run_env(metadata)
