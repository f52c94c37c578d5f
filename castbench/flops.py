"""Count forward-pass FLOPs from the compiled graph, not from a formula.

TensorFlow: the profiler's float-operation count over the frozen inference graph.
JAX: the same count over the traced forward program (its jaxpr), which is the same on every
device. XLA's own cost analysis will not do: after optimisation a GPU's convolutions are cuDNN
custom calls it does not count (EfficientNetB4 came out at 0.28 instead of 9.02 GFLOP), and
before it, it leaves out the multiply-adds that fall on a convolution's zero padding, which
TensorFlow's profiler (like the papers' tables) counts: 3 % fewer for VGG16.
Both count a multiply-add as two FLOPs over the whole kernel window, and one FLOP per element of
element-wise arithmetic and reductions; they agree within 2 % for all ten backbones.
Other backends: not counted (None), rather than guessed.
"""

from __future__ import annotations

import math

import keras


def forward_flops_per_image(model: keras.Model) -> float | None:
    """FLOPs of one forward pass of ``model`` on a single image, or None if not countable."""
    backend = keras.backend.backend()
    if backend == "tensorflow":
        return _tensorflow_flops(model)
    if backend == "jax":
        return _jax_flops(model)
    return None


def _tensorflow_flops(model: keras.Model) -> float:
    import tensorflow as tf
    from tensorflow.python.framework.convert_to_constants import (
        convert_variables_to_constants_v2_as_graph,
    )

    spec = tf.TensorSpec((1, *model.input_shape[1:]), model.inputs[0].dtype)
    forward = tf.function(lambda x: model(x, training=False)).get_concrete_function(spec)
    frozen, _ = convert_variables_to_constants_v2_as_graph(forward)
    options = (
        tf.compat.v1.profiler.ProfileOptionBuilder(
            tf.compat.v1.profiler.ProfileOptionBuilder.float_operation()
        )
        .with_empty_output()
        .build()
    )
    profile = tf.compat.v1.profiler.profile(
        graph=frozen.graph, run_meta=tf.compat.v1.RunMetadata(), cmd="op", options=options
    )
    return float(profile.total_float_ops)


# Element-wise arithmetic and sums: one FLOP per element (per input element for a sum), as
# TensorFlow's profiler counts them. Comparisons (max, min: ReLU, ReLU6, clipping, max pooling)
# are not arithmetic, and TensorFlow's profiler does not count its Relu / Relu6 ops either.
ELEMENTWISE = frozenset({"add", "add_any", "sub", "mul", "div", "neg", "exp", "log", "tanh",
                         "logistic", "rsqrt", "sqrt", "square", "pow", "integer_pow",
                         "erf"})  # fmt: skip
REDUCTIONS = frozenset({"reduce_sum"})


def _jax_flops(model: keras.Model) -> float:
    import jax
    import jax.numpy as jnp

    trainable = [v.value for v in model.trainable_variables]
    frozen = [v.value for v in model.non_trainable_variables]

    def forward(x):
        outputs, _ = model.stateless_call(trainable, frozen, x, training=False)
        return outputs

    x = jnp.zeros((1, *model.input_shape[1:]), dtype="float32")
    return float(jaxpr_flops(jax.make_jaxpr(forward)(x).jaxpr))


def jaxpr_flops(jaxpr) -> int:
    """FLOPs of a jaxpr's equations, nested jaxprs (jit, custom derivatives) included."""
    from jax.extend import core

    total = 0
    for equation in jaxpr.eqns:
        total += _equation_flops(equation)
        for param in equation.params.values():
            for inner in param if isinstance(param, (list, tuple)) else [param]:
                if isinstance(inner, core.ClosedJaxpr):
                    total += jaxpr_flops(inner.jaxpr)
                elif isinstance(inner, core.Jaxpr):
                    total += jaxpr_flops(inner)
    return total


def _equation_flops(equation) -> int:
    name = equation.primitive.name
    out = equation.outvars[0].aval.shape
    if name == "conv_general_dilated":
        kernel = equation.invars[1].aval.shape
        spec = equation.params["dimension_numbers"].rhs_spec  # (out, in, *spatial) positions
        window = math.prod(kernel[i] for i in spec[2:]) * kernel[spec[1]]
        return 2 * math.prod(out) * window
    if name == "dot_general":
        (contracting, _), _ = equation.params["dimension_numbers"]
        lhs = equation.invars[0].aval.shape
        return 2 * math.prod(out) * math.prod(lhs[i] for i in contracting)
    if name in ELEMENTWISE:
        return math.prod(out)
    if name in REDUCTIONS:
        return math.prod(equation.invars[0].aval.shape)
    return 0
