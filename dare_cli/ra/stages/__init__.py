"""The Rapid Assessment's stages, one module each; :mod:`dare_cli.ra.pipeline` joins them.

Each stage module holds the per-station step its PEs run (module-level functions, so worker
processes can run them) and ``build(context, config=..., ...) -> StageWork``, what the stage
does in one run. :mod:`~dare_cli.ra.stages.common` reads and writes what stages hand on to
each other in the run folder.
"""
