from .reencrypt import cli

cli()
