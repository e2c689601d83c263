"""The conditioned generator and its four conditioning schemes (paper, Section 3.2).

For an N-class classifier and images of shape (C, H, W) with H, W divisible by 4:

    z (B, 100) [+ e (B, 100) = embed(conditioning)]              early conditioning (label/vector)
      -> ConvTranspose2d(kernel N): (B, width, N, N)              1x1 -> NxN
      [+ hot matrix (B, 1, N, N) concatenated here]               intermediate matrix conditioning
      -> Conv2d 3x3 at NxN -> resize to (H/4, W/4)
      -> ConvTranspose2d x2 (stride 2): (B, width/4, H, W) -> Conv2d -> sigmoid: (B, C, H, W) in [0, 1]
with BatchNorm, LeakyReLU(0.2) and (heavy) Dropout after every hidden block.

Schemes (``GeneratorConfig.conditioning``):
- ``label``: a learnt embedding of the label (3.2.1). P = one-hot(label).
- ``vector``: v = softmax(g), g ~ N(0, I_N); label = argmax v; v -> Linear -> 100 dims (3.2.2). P = v.
- ``matrix``: an NxN hot matrix, row and column ``label`` set to 1, concatenated at the NxN stage;
  the generation up to NxN is unconditioned (3.2.3). P = one-hot(label).
- ``vector_matrix``: the vector early and the hot matrix at NxN, argmax v = matrix index (3.2.4).
  P = v.
P is the conditioning distribution that the KL term compares with the classifier's output.

The NxN stage is built for the classifier's N (any N >= 1), and the resize to H/4 makes the same
generator serve 1x28x28 and 3x32x32 (docs/choices.md pitfall 3). The output is a sigmoid in [0, 1], the
classifier's own input scale (pitfall 5).
"""
from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from .config import GeneratorConfig, check_conditioning, check_int
from .errors import ConfigError, ShapeError

VECTOR_SCHEMES = ("vector", "vector_matrix")
MATRIX_SCHEMES = ("matrix", "vector_matrix")


@dataclass
class Conditioning:
    """One batch of conditioning: ``labels`` (B,), ``p`` (B, N) the conditioning distribution,
    ``matrix`` (B, 1, N, N) hot matrices or None."""

    labels: torch.Tensor
    p: torch.Tensor
    matrix: torch.Tensor | None

    def to(self, device) -> "Conditioning":
        return Conditioning(self.labels.to(device), self.p.to(device),
                            None if self.matrix is None else self.matrix.to(device))


def hot_matrix(labels: torch.Tensor, n: int) -> torch.Tensor:
    """(B, 1, n, n) matrices with row and column ``labels[b]`` set to 1, the rest 0."""
    m = torch.zeros(len(labels), 1, n, n)
    idx = torch.arange(len(labels))
    m[idx, 0, labels, :] = 1.0
    m[idx, 0, :, labels] = 1.0
    return m


def check_labels(labels, count: int, num_classes: int) -> torch.Tensor:
    """``labels`` as a long tensor of ``count`` class indices in [0, num_classes), else
    ``ConfigError``."""
    try:
        t = torch.as_tensor(labels)
    except (TypeError, ValueError, RuntimeError):
        raise ConfigError(f"labels must be a sequence of class indices, got {type(labels).__name__}") from None
    if t.dim() != 1 or t.is_floating_point() or t.is_complex() or t.dtype == torch.bool:
        raise ConfigError(f"labels must be a 1-D sequence of integer class indices, got "
                          f"{t.dtype} of shape {tuple(t.shape)}")
    if len(t) != count:
        raise ConfigError(f"{len(t)} labels for {count} samples; give one label per sample")
    if len(t) and (t.min() < 0 or t.max() >= num_classes):
        raise ConfigError(f"labels must be class indices in [0, {num_classes - 1}] for this "
                          f"{num_classes}-class generator; got values from {int(t.min())} to "
                          f"{int(t.max())}")
    return t.long()


def sample_conditioning(scheme: str, batch: int, num_classes: int, *, labels=None,
                        generator: torch.Generator | None = None) -> Conditioning:
    """Draw conditioning for ``batch`` samples; ``labels`` fixes the labels (else uniform)."""
    check_conditioning(scheme)
    n = num_classes
    if labels is None:
        labels = torch.randint(0, n, (batch,), generator=generator)
    labels = check_labels(labels, batch, n)
    if scheme in VECTOR_SCHEMES:
        p = torch.softmax(torch.randn(batch, n, generator=generator), dim=1)
        # move the largest entry to the wanted label so that argmax p == label
        top = p.argmax(1)
        rows = torch.arange(batch)
        p_top, p_lab = p[rows, top].clone(), p[rows, labels].clone()
        p[rows, labels], p[rows, top] = p_top, p_lab
    else:
        p = F.one_hot(labels, n).float()
    matrix = hot_matrix(labels, n) if scheme in MATRIX_SCHEMES else None
    return Conditioning(labels, p, matrix)


_BITS = 31                      # random bits used per int32 word (random_(0, 2**31))


def half_masks(x: torch.Tensor) -> torch.Tensor:
    """Bernoulli(1/2) keep-masks shaped (and strided) like ``x``, from random bits: one int32
    draw from the global generator gives 31 i.i.d. fair bits, so a mask costs 1/31 of a random
    number per element instead of one (issue 14: ``rand_like`` was 11% of an inversion step)."""
    n = x.numel()
    words = torch.empty((n + _BITS - 1) // _BITS, dtype=torch.int32, device=x.device)
    words.random_(0, 2 ** _BITS)
    shifts = torch.arange(_BITS, dtype=torch.int32, device=x.device)
    bits = ((words.unsqueeze(1) >> shifts) & 1).view(-1)[:n]
    dense = x.is_contiguous() or (x.dim() == 4 and x.is_contiguous(memory_format=torch.channels_last))
    return bits.as_strided(x.size(), x.stride()) if dense else bits.view(x.shape)


class Dropout(nn.Dropout):
    """Inverted dropout, y = x * m / (1 - p) with m_i ~ Bernoulli(1 - p) i.i.d., as ``nn.Dropout``.

    In a training step (autograd recording) with the paper's p = 0.5 the mask comes from random
    bits (``half_masks``: 31 fair bits per int32 draw, about 6x faster than uniforms); otherwise
    from ``torch.rand(...) >= p`` (fp32 uniforms, about 3x faster on the CPU than ``nn.Dropout``'s
    ``bernoulli_``), both from the global generator (issue 14). Same distribution as
    ``nn.Dropout``, another random stream. Sampling (no autograd) keeps the uniform masks, so
    images drawn with dropout on from a cached generator are the same as before the bit masks."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0:
            return x
        if self.p == 1:
            return torch.zeros_like(x)
        if self.p == 0.5 and torch.is_grad_enabled():
            keep = half_masks(x)
        else:
            keep = torch.rand_like(x, dtype=torch.float32) >= self.p
        return x * (keep.to(x.dtype) * (1.0 / (1.0 - self.p)))


class LatentConvTranspose2d(nn.ConvTranspose2d):
    """The generator's first layer, ``ConvTranspose2d(C_in, C_out, k)`` applied to a 1x1 input,
    computed as the matrix product it is:

        y[b, o, i, j] = sum_c z[b, c] W[c, o, i, j] + bias[o],   i.e.  Y = Z @ W.view(C_in, -1)

    Same parameters (and state dict) as ``nn.ConvTranspose2d``; the oneDNN transposed
    convolution of a 1x1 input ran at a few GFLOP/s on the CPU, a matmul at the machine's rate
    (issue 14). With channels-last weights (memory order c, i, j, o) the product is taken in that
    order and the output comes out channels-last without a copy. Other inputs go to the
    convolution."""

    def forward(self, x: torch.Tensor, output_size=None) -> torch.Tensor:
        plain = (self.stride == (1, 1) and self.padding == (0, 0) and self.dilation == (1, 1)
                 and self.output_padding == (0, 0) and self.groups == 1 and output_size is None)
        if not plain or x.dim() != 4 or x.shape[-2:] != (1, 1):
            return super().forward(x, output_size)
        w, b = self.weight, x.shape[0]
        c_in, c_out, kh, kw = w.shape
        z = x.reshape(b, c_in)
        if w.is_contiguous():
            y = (z @ w.view(c_in, -1)).view(b, c_out, kh, kw)
        else:                                       # channels-last (or other) weight layout
            wl = w.permute(0, 2, 3, 1).reshape(c_in, -1)
            y = (z @ wl).view(b, kh, kw, c_out).permute(0, 3, 1, 2)
        return y if self.bias is None else y + self.bias.view(1, -1, 1, 1).to(y.dtype)


class Generator(nn.Module):
    """A single conditioned generator for all classes of an N-class classifier."""

    def __init__(self, num_classes: int, image_shape, cfg: GeneratorConfig | None = None):
        super().__init__()
        cfg = cfg or GeneratorConfig()
        check_conditioning(cfg.conditioning)
        c, h, w = image_shape
        if h % 4 or w % 4 or h < 4 or w < 4:
            raise ShapeError(f"generator image height/width must be positive multiples of 4, got "
                             f"{tuple(image_shape)} (28x28 and 32x32 work)")
        if num_classes < 1:
            raise ShapeError(f"num_classes must be >= 1, got {num_classes}")
        self.num_classes, self.image_shape = num_classes, tuple(image_shape)
        self.conditioning, self.latent_dim = cfg.conditioning, cfg.latent_dim
        width, p = cfg.width, cfg.dropout
        if cfg.conditioning == "label":
            self.embed = nn.Embedding(num_classes, cfg.cond_dim)
        elif cfg.conditioning in VECTOR_SCHEMES:
            self.embed = nn.Linear(num_classes, cfg.cond_dim)
        else:
            self.embed = None
        in_ch = cfg.latent_dim + (cfg.cond_dim if self.embed is not None else 0)
        mat_ch = 1 if cfg.conditioning in MATRIX_SCHEMES else 0

        def block(layer, ch):
            return [layer, nn.BatchNorm2d(ch), nn.LeakyReLU(0.2), Dropout(p)]

        self.stem = nn.Sequential(*block(LatentConvTranspose2d(in_ch, width, num_classes), width))
        self.mix = nn.Sequential(*block(nn.Conv2d(width + mat_ch, width, 3, padding=1), width))
        self.base = (h // 4, w // 4)
        self.up = nn.Sequential(
            *block(nn.ConvTranspose2d(width, width // 2, 4, stride=2, padding=1), width // 2),
            *block(nn.ConvTranspose2d(width // 2, width // 4, 4, stride=2, padding=1), width // 4),
            nn.Conv2d(width // 4, c, 3, padding=1), nn.Sigmoid())

    def forward(self, z: torch.Tensor, cond: Conditioning) -> torch.Tensor:
        b = z.shape[0]
        if self.conditioning == "label":
            z = torch.cat([z, self.embed(cond.labels)], 1)
        elif self.embed is not None:
            z = torch.cat([z, self.embed(cond.p)], 1)
        x = self.stem(z.view(b, -1, 1, 1))                           # (B, width, N, N)
        if cond.matrix is not None and self.conditioning in ("matrix", "vector_matrix"):
            x = torch.cat([x, cond.matrix], 1)                        # (B, width + 1, N, N)
        x = self.mix(x)                                               # (B, width, N, N)
        if x.shape[-2:] != self.base:
            x = F.interpolate(x, size=self.base, mode="bilinear", align_corners=False)
        return self.up(x)                                             # (B, C, H, W)


@contextmanager
def generation_mode(gen: Generator, keep_dropout: bool = True):
    """Evaluation mode for sampling: BatchNorm uses its running statistics; dropout stays on when
    ``keep_dropout`` (the paper's "heavy dropout during the generation process")."""
    was = gen.training
    gen.eval()
    if keep_dropout:
        for m in gen.modules():
            if isinstance(m, nn.Dropout):
                m.train()
    try:
        yield gen
    finally:
        gen.train(was)


def sample_in_stream(gen: Generator, labels: torch.Tensor, rng: torch.Generator, *,
                     keep_dropout: bool = True, batch_size: int = 1000, conditioning=None):
    """Images for ``labels`` in batches (on the CPU): latents z ~ N(0, I) and the conditioning from
    ``rng``, dropout (when kept) from torch's *global* generator as the caller left it. Use
    ``generate``; this is for a training loop that owns the global stream (the garbage class).
    ``conditioning(labels) -> Conditioning`` replaces the generator's own scheme."""
    device = next(gen.parameters()).device
    out = []
    with torch.no_grad(), generation_mode(gen, keep_dropout):
        for i in range(0, len(labels), batch_size):
            lb = labels[i:i + batch_size]
            if conditioning is None:
                cond = sample_conditioning(gen.conditioning, len(lb), gen.num_classes, labels=lb,
                                           generator=rng)
            else:
                cond = conditioning(lb)
            z = torch.randn(len(lb), gen.latent_dim, generator=rng)
            out.append(gen(z.to(device), cond.to(device)).cpu())
    if not out:  # no labels: no images (e.g. n = 0)
        return torch.empty(0, *gen.image_shape)
    return torch.cat(out)


def generate(gen: Generator, n: int, *, labels=None, seed: int = 0, keep_dropout: bool = True,
             batch_size: int = 1000, conditioning=None):
    """The one way to sample: ``n`` images (on the CPU) and their labels, balanced labels
    (0, 1, ..., N-1, 0, ...) by default, deterministic for ``seed``.

    Latents and conditioning come from ``torch.Generator().manual_seed(seed)``; dropout at
    generation time (``keep_dropout``) needs torch's global generator, which is reseeded with
    ``seed`` inside ``torch.random.fork_rng``, so the caller's random state is left as it was.
    ``conditioning(labels) -> Conditioning`` replaces the generator's own scheme (e.g. the hot
    conditioning of reconstruction). ``labels`` (optional) gives one class index in [0, N) per
    sample; ``n = 0`` gives an empty batch, a negative or non-integer count or labels out of range
    are a ``ConfigError``.
    """
    check_int("n", n, 0, " (the number of images to generate; 0 gives an empty batch)")
    labels = check_labels(torch.arange(n) % gen.num_classes if labels is None else labels, n,
                          gen.num_classes)
    rng = torch.Generator().manual_seed(seed)
    device = next(gen.parameters()).device
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(seed)
        x = sample_in_stream(gen, labels, rng, keep_dropout=keep_dropout, batch_size=batch_size,
                             conditioning=conditioning)
    return x, labels
