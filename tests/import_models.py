"""Reference architectures for the import round-trip tests, written out as users write them:
LeNet-5, ResNet-18 (BasicBlock x [2, 2, 2, 2], residual adds, 1x1 downsample) and a small
Transformer-encoder classifier; plus models that exercise the importers' refusals."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class LeNet5(nn.Module):
    def __init__(self, num_classes=10):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 6, 5, padding=2)
        self.pool1 = nn.AvgPool2d(2)
        self.conv2 = nn.Conv2d(6, 16, 5)
        self.pool2 = nn.AvgPool2d(2)
        self.fc1 = nn.Linear(16 * 5 * 5, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, num_classes)

    def forward(self, x):
        x = self.pool1(torch.tanh(self.conv1(x)))
        x = self.pool2(torch.tanh(self.conv2(x)))
        x = x.view(x.size(0), -1)
        x = F.relu(self.fc1(x))
        x = F.relu(self.fc2(x))
        return self.fc3(x)


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, inplanes, planes, stride=1, downsample=None):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(planes, planes, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample

    def forward(self, x):
        identity = x
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        if self.downsample is not None:
            identity = self.downsample(x)
        out += identity
        return self.relu(out)


class ResNet18(nn.Module):
    def __init__(self, num_classes=10):
        super().__init__()
        self.inplanes = 64
        self.conv1 = nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        self.layer1 = self._make_layer(64, 2)
        self.layer2 = self._make_layer(128, 2, stride=2)
        self.layer3 = self._make_layer(256, 2, stride=2)
        self.layer4 = self._make_layer(512, 2, stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(512, num_classes)

    def _make_layer(self, planes, blocks, stride=1):
        downsample = None
        if stride != 1 or self.inplanes != planes:
            downsample = nn.Sequential(
                nn.Conv2d(self.inplanes, planes, 1, stride=stride, bias=False),
                nn.BatchNorm2d(planes),
            )
        layers = [BasicBlock(self.inplanes, planes, stride, downsample)]
        self.inplanes = planes
        layers += [BasicBlock(planes, planes) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        x = torch.flatten(self.avgpool(x), 1)
        return self.fc(x)


class TransformerClassifier(nn.Module):
    def __init__(self, features=12, d_model=32, nhead=4, layers=2, num_classes=5):
        super().__init__()
        self.proj = nn.Linear(features, d_model)
        layer = nn.TransformerEncoderLayer(
            d_model, nhead, dim_feedforward=64, dropout=0.1, batch_first=True
        )
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(d_model)
        self.head = nn.Linear(d_model, num_classes)

    def forward(self, x):
        h = self.encoder(self.proj(x))
        h = self.norm(h).mean(dim=1)
        return self.head(h)


class WithOpaque(nn.Module):
    """torch.cumsum and nn.Softsign have no catalog node: both stay opaque."""

    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(8, 16)
        self.clip = nn.Softsign()
        self.fc2 = nn.Linear(16, 3)

    def forward(self, x):
        return self.fc2(torch.cumsum(self.clip(self.fc1(x)), dim=1))


class Branchy(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(8, 3)

    def forward(self, x):
        if x.sum() > 0:
            return self.fc(x)
        return -self.fc(x)


class Shared(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(8, 8)

    def forward(self, x):
        return self.fc(self.fc(x))


class SequenceModel(nn.Module):
    """LSTM (batch first) → last step, plus a Chunk/Concat, a transpose and a slice."""

    def __init__(self):
        super().__init__()
        self.lstm = nn.LSTM(6, 16, batch_first=True)
        self.head = nn.Linear(8, 4)

    def forward(self, x):
        out, _ = self.lstm(x)
        a, b = torch.chunk(out[:, -1], 2, dim=1)
        y = torch.cat([b, a], dim=1).unsqueeze(1).transpose(1, 2).squeeze(2)
        return self.head(y[:, 4:12] * torch.sigmoid(y[:, 0:8]))


class MobileGates(nn.Module):
    """MobileNet-style gates, as modules and as functions: nn.ReLU6, F.relu6, nn.Hardsigmoid,
    F.hardsigmoid, F.hardtanh, nn.GLU and F.glu, an RMSNorm and adaptive max pooling."""

    def __init__(self, num_classes=10):
        super().__init__()
        self.conv = nn.Conv2d(3, 16, 3, padding=1)
        self.act = nn.ReLU6(inplace=True)
        self.gate = nn.GLU(dim=1)  # 16 → 8 channels
        self.pool = nn.AdaptiveMaxPool2d((2, 2))
        self.fc = nn.Linear(32, 24)
        self.norm = nn.RMSNorm(24, eps=1e-6)
        self.squash = nn.Hardsigmoid()
        self.head = nn.Linear(12, num_classes)

    def forward(self, x):
        x = self.gate(self.act(self.conv(x)))
        x = F.hardsigmoid(x) * F.relu6(x)
        x = torch.flatten(self.pool(x), 1)
        x = F.glu(self.norm(self.fc(x)), dim=-1)  # 24 → 12
        return self.head(F.hardtanh(self.squash(x), -0.25, 0.75))


class WithParameter(nn.Module):
    """A bare parameter added in forward (a Parameter node), and a buffer (its user opaque)."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(8, 4)
        self.offset = nn.Parameter(torch.randn(1, 4))

    def forward(self, x):
        return self.fc(x) + self.offset


class WithBuffer(nn.Module):
    """A buffer read in forward is not learned: the add that reads it stays opaque."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(8, 4)
        self.register_buffer("offset", torch.zeros(1, 4))

    def forward(self, x):
        return self.fc(x) + self.offset


class CatOfSplit(nn.Module):
    """torch.cat of torch.split's raw output: no converter knows the pattern."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(8, 8)

    def forward(self, x):
        return torch.cat(torch.split(self.fc(x), 2, dim=1), 1)


class TokensAndPositions(nn.Module):
    """A class token expanded to the batch, a learned position table read by arange ids."""

    def __init__(self, features=6, length=5, d_model=8):
        super().__init__()
        self.proj = nn.Linear(features, d_model)
        self.cls_token = nn.Parameter(torch.randn(1, 1, d_model))
        self.positions = nn.Embedding(length + 1, d_model)
        self.head = nn.Linear(d_model, 3)

    def forward(self, x):
        h = self.proj(x)
        cls = self.cls_token.expand(h.size(0), -1, -1)
        h = torch.cat([cls, h], dim=1)
        ids = torch.arange(h.size(1), device=h.device).unsqueeze(0)
        h = h + self.positions(ids)
        return self.head(h[:, 0])


class CausalAttention(nn.Module):
    """Attention from parts (F.scaled_dot_product_attention, causal) and a causal MHA."""

    def __init__(self, d_model=8):
        super().__init__()
        self.q = nn.Linear(d_model, d_model)
        self.k = nn.Linear(d_model, d_model)
        self.v = nn.Linear(d_model, d_model)
        self.head = nn.Linear(d_model, d_model)

    def forward(self, x):
        a = F.scaled_dot_product_attention(self.q(x), self.k(x), self.v(x), is_causal=True)
        return self.head(a)


class ViTTiny(nn.Module):
    """ViT as usually written: strided-conv patches, a class token (nn.Parameter) expanded to
    the batch and prepended, a learned position embedding added, nn.TransformerEncoder, head."""

    def __init__(self, image=16, patch=4, channels=3, dim=32, depth=2, heads=4, num_classes=10):
        super().__init__()
        self.patch_embed = nn.Conv2d(channels, dim, patch, stride=patch)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, (image // patch) ** 2 + 1, dim))
        nn.init.trunc_normal_(self.cls_token, std=0.02)
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        layer = nn.TransformerEncoderLayer(
            dim, heads, dim_feedforward=4 * dim, dropout=0.0, activation="gelu",
            batch_first=True, norm_first=True,
        )  # fmt: skip
        self.encoder = nn.TransformerEncoder(layer, depth, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, num_classes)

    def forward(self, x):
        x = self.patch_embed(x).flatten(2).transpose(1, 2)  # (B, N, D)
        B = x.shape[0]
        cls = self.cls_token.expand(B, -1, -1)
        x = torch.cat((cls, x), dim=1) + self.pos_embed
        x = self.norm(self.encoder(x))
        return self.head(x[:, 0])


class CausalEncoder(nn.Module):
    """A GPT-style stack: nn.TransformerEncoder and a MultiheadAttention under the square
    subsequent mask (is_causal=True), as the torch docs write it."""

    def __init__(self, d_model=16, nhead=2):
        super().__init__()
        layer = nn.TransformerEncoderLayer(d_model, nhead, 32, dropout=0.0, batch_first=True)
        self.blocks = nn.TransformerEncoder(layer, 2, enable_nested_tensor=False)
        self.attn = nn.MultiheadAttention(d_model, nhead, batch_first=True)
        self.last = nn.TransformerEncoderLayer(d_model, nhead, 32, dropout=0.0, batch_first=True)

    def forward(self, x):
        mask = nn.Transformer.generate_square_subsequent_mask(x.size(1), device=x.device)
        h = self.blocks(x, mask=mask, is_causal=True)
        h = h + self.attn(h, h, h, attn_mask=mask, need_weights=False, is_causal=True)[0]
        return self.last(h, src_mask=mask, is_causal=True)


class PaddingMasked(nn.Module):
    """A key-padding mask computed from the input: no node computes the comparison (opaque)."""

    def __init__(self, d_model=8):
        super().__init__()
        self.layer = nn.TransformerEncoderLayer(d_model, 2, 16, dropout=0.0, batch_first=True)

    def forward(self, x):
        return self.layer(x, src_key_padding_mask=x[:, :, 0] > 0)


class LSTMTextClassifier(nn.Module):
    """A text classifier on int64 token ids: Embedding → LSTM (batch first) → last step → head."""

    def __init__(self, vocab_size=50, embed_dim=16, hidden=24, num_classes=3):
        super().__init__()
        self.embed = nn.Embedding(vocab_size, embed_dim)
        self.lstm = nn.LSTM(embed_dim, hidden, batch_first=True)
        self.head = nn.Linear(hidden, num_classes)

    def forward(self, tokens):
        out, _ = self.lstm(self.embed(tokens))
        return self.head(out[:, -1])


class TwoInputs(nn.Module):
    """forward(x, mask=None): the mask, when given, is read (the graph has one input, x)."""

    def __init__(self, use_mask=True):
        super().__init__()
        self.fc = nn.Linear(8, 3)
        self.use_mask = use_mask

    def forward(self, x, mask=None):
        if self.use_mask and mask is not None:
            x = x * mask
        return self.fc(x)


class DoubleConv(nn.Module):
    """(conv 3×3 → BN → ReLU) × 2, as in the reference U-Net implementations."""

    def __init__(self, in_channels, out_channels):
        super().__init__()
        self.double_conv = nn.Sequential(
            nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
            nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
        )

    def forward(self, x):
        return self.double_conv(x)


class Up(nn.Module):
    """Transposed-conv upsampling, concatenated with the skip connection, then DoubleConv."""

    def __init__(self, in_channels, out_channels):
        super().__init__()
        self.up = nn.ConvTranspose2d(in_channels, in_channels // 2, 2, stride=2)
        self.conv = DoubleConv(in_channels, out_channels)

    def forward(self, x, skip):
        return self.conv(torch.cat([skip, self.up(x)], dim=1))


class UNet(nn.Module):
    """U-Net (Ronneberger et al. 2015, as the common PyTorch reference writes it: padded convs,
    transposed-conv upsampling): dense per-pixel class scores (B, classes, H, W). `base` 64 is
    the paper's width; H and W divisible by 16."""

    def __init__(self, in_channels=3, num_classes=2, base=64):
        super().__init__()
        widths = [base, base * 2, base * 4, base * 8, base * 16]
        self.inc = DoubleConv(in_channels, widths[0])
        self.downs = nn.ModuleList(
            nn.Sequential(nn.MaxPool2d(2), DoubleConv(widths[i], widths[i + 1])) for i in range(4)
        )
        self.ups = nn.ModuleList(Up(widths[i + 1], widths[i]) for i in reversed(range(4)))
        self.outc = nn.Conv2d(widths[0], num_classes, 1)

    def forward(self, x):
        skips = [self.inc(x)]
        for down in self.downs:
            skips.append(down(skips[-1]))
        x = skips.pop()
        for up in self.ups:
            x = up(x, skips.pop())
        return self.outc(x)


def _make_divisible(v, divisor=8, min_value=None):
    """torchvision's channel rounding for MobileNet widths."""
    min_value = min_value or divisor
    new_v = max(min_value, int(v + divisor / 2) // divisor * divisor)
    return new_v + divisor if new_v < 0.9 * v else new_v


class ConvBNReLU6(nn.Sequential):
    def __init__(self, in_planes, out_planes, kernel_size=3, stride=1, groups=1):
        padding = (kernel_size - 1) // 2
        super().__init__(
            nn.Conv2d(in_planes, out_planes, kernel_size, stride, padding, groups=groups,
                      bias=False),
            nn.BatchNorm2d(out_planes),
            nn.ReLU6(inplace=True),
        )  # fmt: skip


class InvertedResidual(nn.Module):
    def __init__(self, inp, oup, stride, expand_ratio):
        super().__init__()
        hidden = round(inp * expand_ratio)
        self.use_res_connect = stride == 1 and inp == oup
        layers = [ConvBNReLU6(inp, hidden, kernel_size=1)] if expand_ratio != 1 else []
        layers += [
            ConvBNReLU6(hidden, hidden, stride=stride, groups=hidden),  # depthwise
            nn.Conv2d(hidden, oup, 1, 1, 0, bias=False),  # linear bottleneck
            nn.BatchNorm2d(oup),
        ]
        self.conv = nn.Sequential(*layers)

    def forward(self, x):
        if self.use_res_connect:
            return x + self.conv(x)
        return self.conv(x)


class MobileNetV2(nn.Module):
    """MobileNetV2 (Sandler et al. 2018) as torchvision writes it: 3,504,872 parameters at
    1000 classes and width 1.0."""

    def __init__(self, num_classes=1000, width_mult=1.0, dropout=0.2):
        super().__init__()
        settings = [  # t (expansion), c (channels), n (repeats), s (first stride)
            [1, 16, 1, 1], [6, 24, 2, 2], [6, 32, 3, 2], [6, 64, 4, 2],
            [6, 96, 3, 1], [6, 160, 3, 2], [6, 320, 1, 1],
        ]  # fmt: skip
        input_channel = _make_divisible(32 * width_mult)
        self.last_channel = _make_divisible(1280 * max(1.0, width_mult))
        features = [ConvBNReLU6(3, input_channel, stride=2)]
        for t, c, n, s in settings:
            output_channel = _make_divisible(c * width_mult)
            for i in range(n):
                stride = s if i == 0 else 1
                features.append(InvertedResidual(input_channel, output_channel, stride, t))
                input_channel = output_channel
        features.append(ConvBNReLU6(input_channel, self.last_channel, kernel_size=1))
        self.features = nn.Sequential(*features)
        self.classifier = nn.Sequential(
            nn.Dropout(dropout), nn.Linear(self.last_channel, num_classes)
        )

    def forward(self, x):
        x = self.features(x)
        x = F.adaptive_avg_pool2d(x, (1, 1))
        x = torch.flatten(x, 1)
        return self.classifier(x)


class TwoHeads(nn.Module):
    """Two sets of class scores: no single obvious loss for both."""

    def __init__(self):
        super().__init__()
        self.body = nn.Linear(8, 16)
        self.a = nn.Linear(16, 3)
        self.b = nn.Linear(16, 5)

    def forward(self, x):
        h = torch.relu(self.body(x))
        return self.a(h), self.b(h)


class ScalarArithmetic(nn.Module):
    """Constants with tensors: x * 4, x + 1, x - 0.5, 1 - x, x / 8, -x (Scale nodes), and the
    MobileNetV3 gates (Hardswish, Hardsigmoid, Hardtanh, ReLU6) as modules and functions."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(8, 8)
        self.gates = nn.Sequential(nn.Hardswish(), nn.ReLU6(), nn.Hardtanh(-2.0, 2.0))
        self.head = nn.Linear(8, 3)

    def forward(self, x):
        h = self.fc(x) * 4
        h = (h + 1) - 0.5
        h = F.hardswish(1 - h) / 8 + F.relu6(-h) + F.hardsigmoid(h)
        return self.head(self.gates(h))


class PlainTransformerEncoder(nn.Module):
    """nn.TransformerEncoder itself, 2 layers, on (B, T, d_model): the output has the input's
    shape (the import makes it a reconstruction)."""

    def __init__(self, d_model=32, nhead=4, dim_feedforward=64, num_layers=2):
        super().__init__()
        layer = nn.TransformerEncoderLayer(
            d_model, nhead, dim_feedforward, dropout=0.1, batch_first=True
        )
        self.encoder = nn.TransformerEncoder(layer, num_layers, enable_nested_tensor=False)

    def forward(self, x):
        return self.encoder(x)
