"""PyTorch + timm models for the peer sweep. torch and timm are the optional ``peer`` extra:
they are imported only when a runner is made, and their absence is a one-line usage error.

A model is timm's backbone (``forward_features``: everything Keras keeps with
``include_top=False``) followed by global average pooling and one linear unit, castbench's
``gap`` head. A training step is one optimizer step on binary cross-entropy (from the logit;
Keras applies the sigmoid in the model, the same function); an inference step is a forward
pass under ``torch.inference_mode``. Each step ends with ``torch.cuda.synchronize``, so the
clock stops after the device has finished.
"""

from __future__ import annotations

import gc
import importlib
from typing import Any

from castbench.errors import UsageError
from castbench.timing.batch import random_batch
from castbench.timing.config import TimingConfig
from castbench.timing.timer import PlainStep

OPTIMIZERS = ("adam", "sgd")
DEVICES = ("auto", "cuda", "cpu")


def require_torch() -> tuple[Any, Any]:
    """(torch, timm), or a usage error naming the extra that installs them."""
    modules = []
    for name in ("torch", "timm"):  # torch first: timm imports it
        try:
            modules.append(importlib.import_module(name))
        except ImportError:
            raise UsageError(f"castbench peer timm needs PyTorch and timm ({name} is not "
                             "installed): pip install 'castbench[peer]'") from None  # fmt: skip
    torch, timm = modules
    return torch, timm


class TorchModel:
    """A timm backbone with castbench's GAP + one-unit head, on one device."""

    def __init__(self, torch: Any, timm: Any, name: str, device: Any, compile_model: bool,
                 optimizer: str, seed: int = 0) -> None:  # fmt: skip
        self.torch = torch
        self.device = device
        torch.manual_seed(seed)
        nn = torch.nn
        body = timm.create_model(name, pretrained=False, num_classes=0)
        # Only forward_features runs; timm's VGG keeps the old fc6/fc7 (4096-wide
        # convolutions) as pre-logits layers that Keras' include_top=False drops.
        if isinstance(getattr(body, "pre_logits", None), nn.Module):
            body.pre_logits = nn.Identity()
        head = nn.Linear(body.num_features, 1)

        class GapHead(nn.Module):  # defined here: torch is imported only when a model is built
            def __init__(self) -> None:
                super().__init__()
                self.body, self.head = body, head

            def forward(self, images):
                return self.head(self.body.forward_features(images).mean(dim=(2, 3)))

        self.net = GapHead().to(device)
        self.forward = torch.compile(self.net) if compile_model else self.net
        self.params_trainable = sum(p.numel() for p in self.net.parameters() if p.requires_grad)
        # Keras counts batch-norm moving statistics as (non-trainable) weights; so does this
        buffers = sum(b.numel() for b in self.net.buffers() if b.is_floating_point())
        self.params_total = sum(p.numel() for p in self.net.parameters()) + buffers
        optimizers = {"adam": torch.optim.Adam, "sgd": torch.optim.SGD}
        self.optimizer = optimizers[optimizer](self.net.parameters(), lr=1e-3)
        self.loss = nn.BCEWithLogitsLoss()
        self._gflops: dict[int, float] = {}  # input size -> counted forward GFLOPs per image

    def gflops_per_image(self, input_size: int) -> float:
        """Forward FLOPs of one image, as PyTorch's own ``FlopCounterMode`` counts them: a
        multiply-add is two FLOPs, in convolutions and matrix products (element-wise
        arithmetic, which castbench's Keras count includes, is not counted)."""
        if input_size in self._gflops:  # one count per size, not one per configuration
            return self._gflops[input_size]
        from torch.utils.flop_counter import FlopCounterMode

        torch = self.torch
        image = torch.zeros((1, 3, input_size, input_size), device=self.device)
        training = self.net.training
        self.net.eval()
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            self.net(image)
        self.net.train(training)
        self._gflops[input_size] = counter.get_total_flops() / 1e9
        return self._gflops[input_size]

    def synchronize(self) -> None:
        if self.device.type == "cuda":
            self.torch.cuda.synchronize(self.device)

    def step(self, config: TimingConfig) -> PlainStep:
        torch = self.torch
        images, labels = random_batch(config)  # the batch the Keras step sees, channels first
        images = torch.from_numpy(images.transpose(0, 3, 1, 2).copy()).to(self.device)
        labels = torch.from_numpy(labels).to(self.device)
        self.synchronize()

        def train() -> object:
            self.optimizer.zero_grad(set_to_none=True)
            loss = self.loss(self.forward(images), labels)
            loss.backward()
            self.optimizer.step()
            return loss

        def infer() -> object:
            with torch.inference_mode():
                return self.forward(images)

        self.net.train(config.mode == "train")
        queue = train if config.mode == "train" else infer

        def run() -> object:  # returns once the device has finished the step
            output = queue()
            self.synchronize()
            return output

        # on a GPU, ``queue`` returns once the kernels are queued: a training loop's overlap
        return PlainStep(run, dispatch=queue, wait=lambda _: self.synchronize())

    def reset_peak_memory(self) -> None:
        if self.device.type == "cuda":
            self.torch.cuda.reset_peak_memory_stats(self.device)

    def peak_memory_mb(self) -> float | None:
        """What PyTorch's allocator held for tensors at peak (not the device's used memory)."""
        if self.device.type != "cuda":
            return None
        return self.torch.cuda.max_memory_allocated(self.device) / 2**20

    def recover(self) -> None:
        self.optimizer.zero_grad(set_to_none=True)
        self.release_memory()

    def close(self) -> None:
        del self.net, self.forward, self.optimizer
        self.release_memory()

    def release_memory(self) -> None:
        gc.collect()
        if self.device.type == "cuda":
            self.torch.cuda.empty_cache()


class TorchRunner:
    """Builds timm models on one device: eager by default, ``torch.compile`` on request."""

    backend = "torch"

    def __init__(self, device: str = "auto", compile_model: bool = False,
                 optimizer: str = "adam") -> None:  # fmt: skip
        if device not in DEVICES:
            raise UsageError(f"unknown device {device!r}; choose from: {', '.join(DEVICES)}")
        if optimizer not in OPTIMIZERS:
            raise UsageError(
                f"unknown optimizer {optimizer!r}; choose from: {', '.join(OPTIMIZERS)}"
            )
        self.torch, self.timm = require_torch()
        torch = self.torch
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        if device == "cuda" and not torch.cuda.is_available():
            raise UsageError("--device cuda: PyTorch sees no CUDA device")
        self.torch_device = torch.device(device)
        # cuDNN picks the fastest convolution algorithm per shape (once, in the warm-up)
        torch.backends.cudnn.benchmark = True
        self.jit_compile = compile_model
        self.optimizer = optimizer
        self.device = self._device_label()

    def _device_label(self) -> str:
        """Named the way castbench names a Keras run's device, so the plots' titles agree."""
        from castbench.environment import _cpu_model

        if self.torch_device.type == "cuda":
            return f"gpu:{self.torch.cuda.get_device_name(self.torch_device)}"
        return f"cpu:{_cpu_model()}"

    def load(self, model_name: str) -> TorchModel:
        return TorchModel(self.torch, self.timm, model_name, self.torch_device, self.jit_compile,
                          self.optimizer)  # fmt: skip

    def metadata(self) -> dict[str, Any]:
        from importlib import metadata

        from castbench.environment import _cpu_model, gpu_info

        torch = self.torch
        cuda = self.torch_device.type == "cuda"
        return {
            "backend": "torch",
            "backend_version": torch.__version__,
            "timm": metadata.version("timm"),
            "numpy": metadata.version("numpy"),
            "cpu": _cpu_model(),
            "device": self.device,
            "gpus": gpu_info(),
            "cuda": torch.version.cuda,
            "cudnn": torch.backends.cudnn.version() if cuda else None,
            "cudnn_benchmark": torch.backends.cudnn.benchmark,
            # whether float32 convolutions and matmuls may run as TF32 on tensor cores, which
            # moves step times a lot; a JAX run has its own setting (jax_default_matmul_precision)
            "cudnn_allow_tf32": torch.backends.cudnn.allow_tf32,
            "matmul_allow_tf32": torch.backends.cuda.matmul.allow_tf32,
            "torch_compile": self.jit_compile,
            "optimizer": self.optimizer,
        }
