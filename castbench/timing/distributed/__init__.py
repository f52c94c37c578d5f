"""Timing under ``tf.distribute``: one process over several devices (``mirrored``), or several
processes (``multiworker``, ``MultiWorkerMirroredStrategy`` from ``TF_CONFIG``).

``--batch`` is the per-replica batch; a distributed step trains (or predicts) on
``replicas x batch`` images, each replica on its own slice (:mod:`.step`).

On a machine without GPUs, ``mirrored`` splits the CPU into logical devices (``--replicas N``).
That split, and ``MultiWorkerMirroredStrategy`` itself, must happen before TensorFlow
initialises its devices, so the command line arranges both at the start of a process
(:mod:`.plan`); ``CASTBENCH_CPU_REPLICAS`` tells a measuring process (and
:func:`castbench.runtime.start_quietly`) how many logical CPUs to make.

``castbench timing --workers N`` starts N local cluster workers on loopback (:mod:`.launcher`).

The modules: :mod:`.plan` (the command line's options, checked before TensorFlow starts),
:mod:`.strategy` (the strategies, made once per process), :mod:`.step` (one distributed step),
:mod:`.scaling` (scaling efficiency against the one-replica baseline) and :mod:`.launcher`.
"""
