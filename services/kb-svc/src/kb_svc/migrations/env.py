from helpdesk_common.migrate import run_env
from kb_svc.db import metadata

# each domain package registers its tables here as it lands:
# from kb_svc.<domain> import models as _<domain>  # noqa: F401  (registers the tables)

from kb_svc.content import models as _content  # noqa: F401  (registers the tables)
from kb_svc.idempotency import models as _idempotency  # noqa: F401
from kb_svc.search import models as _search  # noqa: F401  (registers the tables)
from kb_svc.deflection import models as _deflection  # noqa: F401
from kb_svc.feedback import models as _feedback  # noqa: F401

run_env(metadata)
