from helpdesk_common.db import new_metadata

metadata = new_metadata()
