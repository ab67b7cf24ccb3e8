"""tests/security: the authorization matrix reports its cell count through the ``report`` fixture
(helpdesk_common.testing), printed in the run's summary under "authorization matrix"."""
