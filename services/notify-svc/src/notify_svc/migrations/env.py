from helpdesk_common.migrate import run_env
from notify_svc.db import metadata
from notify_svc.deliveries import models as _deliveries  # noqa: F401  (registers the tables)
from notify_svc.webhooks import models as _webhooks  # noqa: F401  (registers the tables)
from notify_svc.notifications import models as _notifications  # noqa: F401  (registers the tables)

run_env(metadata)
