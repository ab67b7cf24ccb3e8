import sys

from .reencrypt import cli

if sys.argv[1:2] == ["reindex"]:
    from .reindex import cli as reindex_cli

    sys.exit(reindex_cli(sys.argv[1:]))
cli()
