"""Allow ``python -m dare_cli`` as well as the ``dare`` console script."""

from dare_cli.main import app

app(prog_name="dare")
