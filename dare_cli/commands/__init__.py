"""One module per command group, each with its own ``typer.Typer`` (joined in ``main``)."""
