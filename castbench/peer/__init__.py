"""Timing peers: castbench's matrix measured with another framework's own models, written in
castbench's results schema so that ``castbench plot --peer`` and ``castbench compare`` put the
two side by side."""
