"""Load the castbench pytest plugin (options, fixtures, parametrisation) for the benchmark
suite only: ``pytest bench`` gets its ``--castbench-*`` options, other sessions stay as they
were."""

pytest_plugins = ["castbench.pytest_plugin"]
