"""The Flax FID Inception against a PyTorch transcription of pytorch-fid, on shared random weights.

The reference below follows pytorch-fid's `fid_inception_v3` (torchvision's Inception3 with the
FIDInceptionA/C/E_1/E_2 patches) and its `InceptionV3` preprocessing (bilinear resize to 299,
align_corners=False). It also runs the real converter, `convert_state_dict`. Skipped without torch.
"""
import numpy as np
import pytest
from flax import traverse_util

from fsq.evaluators import inception
from scripts import convert_inception_weights as convert

torch = pytest.importorskip("torch")
nn = torch.nn
F = torch.nn.functional


class BasicConv2d(nn.Module):

  def __init__(self, cin, cout, **kwargs):
    super().__init__()
    self.conv = nn.Conv2d(cin, cout, bias=False, **kwargs)
    self.bn = nn.BatchNorm2d(cout, eps=0.001)

  def forward(self, x):
    return F.relu(self.bn(self.conv(x)))


def _avg_pool(x):  # The FID patch: TF's average pool ignores the padding.
  return F.avg_pool2d(x, kernel_size=3, stride=1, padding=1, count_include_pad=False)


class FIDInceptionA(nn.Module):

  def __init__(self, cin, pool_features):
    super().__init__()
    self.branch1x1 = BasicConv2d(cin, 64, kernel_size=1)
    self.branch5x5_1 = BasicConv2d(cin, 48, kernel_size=1)
    self.branch5x5_2 = BasicConv2d(48, 64, kernel_size=5, padding=2)
    self.branch3x3dbl_1 = BasicConv2d(cin, 64, kernel_size=1)
    self.branch3x3dbl_2 = BasicConv2d(64, 96, kernel_size=3, padding=1)
    self.branch3x3dbl_3 = BasicConv2d(96, 96, kernel_size=3, padding=1)
    self.branch_pool = BasicConv2d(cin, pool_features, kernel_size=1)

  def forward(self, x):
    return torch.cat([
        self.branch1x1(x),
        self.branch5x5_2(self.branch5x5_1(x)),
        self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x))),
        self.branch_pool(_avg_pool(x))], 1)


class InceptionB(nn.Module):

  def __init__(self, cin):
    super().__init__()
    self.branch3x3 = BasicConv2d(cin, 384, kernel_size=3, stride=2)
    self.branch3x3dbl_1 = BasicConv2d(cin, 64, kernel_size=1)
    self.branch3x3dbl_2 = BasicConv2d(64, 96, kernel_size=3, padding=1)
    self.branch3x3dbl_3 = BasicConv2d(96, 96, kernel_size=3, stride=2)

  def forward(self, x):
    return torch.cat([
        self.branch3x3(x),
        self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x))),
        F.max_pool2d(x, kernel_size=3, stride=2)], 1)


class FIDInceptionC(nn.Module):

  def __init__(self, cin, c7):
    super().__init__()
    self.branch1x1 = BasicConv2d(cin, 192, kernel_size=1)
    self.branch7x7_1 = BasicConv2d(cin, c7, kernel_size=1)
    self.branch7x7_2 = BasicConv2d(c7, c7, kernel_size=(1, 7), padding=(0, 3))
    self.branch7x7_3 = BasicConv2d(c7, 192, kernel_size=(7, 1), padding=(3, 0))
    self.branch7x7dbl_1 = BasicConv2d(cin, c7, kernel_size=1)
    self.branch7x7dbl_2 = BasicConv2d(c7, c7, kernel_size=(7, 1), padding=(3, 0))
    self.branch7x7dbl_3 = BasicConv2d(c7, c7, kernel_size=(1, 7), padding=(0, 3))
    self.branch7x7dbl_4 = BasicConv2d(c7, c7, kernel_size=(7, 1), padding=(3, 0))
    self.branch7x7dbl_5 = BasicConv2d(c7, 192, kernel_size=(1, 7), padding=(0, 3))
    self.branch_pool = BasicConv2d(cin, 192, kernel_size=1)

  def forward(self, x):
    b7 = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
    bd = self.branch7x7dbl_1(x)
    for layer in (self.branch7x7dbl_2, self.branch7x7dbl_3, self.branch7x7dbl_4,
                  self.branch7x7dbl_5):
      bd = layer(bd)
    return torch.cat([self.branch1x1(x), b7, bd, self.branch_pool(_avg_pool(x))], 1)


class InceptionD(nn.Module):

  def __init__(self, cin):
    super().__init__()
    self.branch3x3_1 = BasicConv2d(cin, 192, kernel_size=1)
    self.branch3x3_2 = BasicConv2d(192, 320, kernel_size=3, stride=2)
    self.branch7x7x3_1 = BasicConv2d(cin, 192, kernel_size=1)
    self.branch7x7x3_2 = BasicConv2d(192, 192, kernel_size=(1, 7), padding=(0, 3))
    self.branch7x7x3_3 = BasicConv2d(192, 192, kernel_size=(7, 1), padding=(3, 0))
    self.branch7x7x3_4 = BasicConv2d(192, 192, kernel_size=3, stride=2)

  def forward(self, x):
    b7 = x
    for layer in (self.branch7x7x3_1, self.branch7x7x3_2, self.branch7x7x3_3,
                  self.branch7x7x3_4):
      b7 = layer(b7)
    return torch.cat([self.branch3x3_2(self.branch3x3_1(x)), b7,
                      F.max_pool2d(x, kernel_size=3, stride=2)], 1)


class FIDInceptionE(nn.Module):

  def __init__(self, cin, max_pool):
    super().__init__()
    self.max_pool = max_pool  # FIDInceptionE_2 (Mixed_7c) max-pools; E_1 average-pools.
    self.branch1x1 = BasicConv2d(cin, 320, kernel_size=1)
    self.branch3x3_1 = BasicConv2d(cin, 384, kernel_size=1)
    self.branch3x3_2a = BasicConv2d(384, 384, kernel_size=(1, 3), padding=(0, 1))
    self.branch3x3_2b = BasicConv2d(384, 384, kernel_size=(3, 1), padding=(1, 0))
    self.branch3x3dbl_1 = BasicConv2d(cin, 448, kernel_size=1)
    self.branch3x3dbl_2 = BasicConv2d(448, 384, kernel_size=3, padding=1)
    self.branch3x3dbl_3a = BasicConv2d(384, 384, kernel_size=(1, 3), padding=(0, 1))
    self.branch3x3dbl_3b = BasicConv2d(384, 384, kernel_size=(3, 1), padding=(1, 0))
    self.branch_pool = BasicConv2d(cin, 192, kernel_size=1)

  def forward(self, x):
    b3 = self.branch3x3_1(x)
    bd = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
    pooled = (F.max_pool2d(x, kernel_size=3, stride=1, padding=1) if self.max_pool
              else _avg_pool(x))
    return torch.cat([
        self.branch1x1(x),
        torch.cat([self.branch3x3_2a(b3), self.branch3x3_2b(b3)], 1),
        torch.cat([self.branch3x3dbl_3a(bd), self.branch3x3dbl_3b(bd)], 1),
        self.branch_pool(pooled)], 1)


class FIDInceptionV3(nn.Module):
  """pytorch-fid's InceptionV3(output_blocks=[3]) on inputs in [0, 1]."""

  def __init__(self):
    super().__init__()
    self.Conv2d_1a_3x3 = BasicConv2d(3, 32, kernel_size=3, stride=2)
    self.Conv2d_2a_3x3 = BasicConv2d(32, 32, kernel_size=3)
    self.Conv2d_2b_3x3 = BasicConv2d(32, 64, kernel_size=3, padding=1)
    self.Conv2d_3b_1x1 = BasicConv2d(64, 80, kernel_size=1)
    self.Conv2d_4a_3x3 = BasicConv2d(80, 192, kernel_size=3)
    self.Mixed_5b = FIDInceptionA(192, pool_features=32)
    self.Mixed_5c = FIDInceptionA(256, pool_features=64)
    self.Mixed_5d = FIDInceptionA(288, pool_features=64)
    self.Mixed_6a = InceptionB(288)
    self.Mixed_6b = FIDInceptionC(768, c7=128)
    self.Mixed_6c = FIDInceptionC(768, c7=160)
    self.Mixed_6d = FIDInceptionC(768, c7=160)
    self.Mixed_6e = FIDInceptionC(768, c7=192)
    self.Mixed_7a = InceptionD(768)
    self.Mixed_7b = FIDInceptionE(1280, max_pool=False)
    self.Mixed_7c = FIDInceptionE(2048, max_pool=True)
    self.fc = nn.Linear(2048, 1008)  # In the weights file; unused for pool3.

  def forward(self, x):
    x = F.interpolate(x, size=(299, 299), mode="bilinear", align_corners=False)
    x = 2 * x - 1
    x = self.Conv2d_2b_3x3(self.Conv2d_2a_3x3(self.Conv2d_1a_3x3(x)))
    x = F.max_pool2d(x, kernel_size=3, stride=2)
    x = self.Conv2d_4a_3x3(self.Conv2d_3b_1x1(x))
    x = F.max_pool2d(x, kernel_size=3, stride=2)
    for name in ("5b", "5c", "5d", "6a", "6b", "6c", "6d", "6e", "7a", "7b", "7c"):
      x = getattr(self, f"Mixed_{name}")(x)
    return x.mean(dim=(2, 3))


def _randomise(model: nn.Module) -> None:
  generator = torch.Generator().manual_seed(0)
  state = {}
  for key, value in model.state_dict().items():
    if key.endswith("conv.weight"):
      state[key] = torch.randn(value.shape, generator=generator) * (2 / value[0].numel()) ** 0.5
    elif key.endswith(("bn.weight", "running_var")):
      state[key] = 0.5 + torch.rand(value.shape, generator=generator)
    elif key.endswith(("bn.bias", "running_mean")):
      state[key] = 0.2 * torch.randn(value.shape, generator=generator)
    else:
      state[key] = value
  model.load_state_dict(state)


def test_matches_pytorch_fid_structure_on_random_weights():
  reference = FIDInceptionV3().eval()
  _randomise(reference)
  flat = convert.convert_state_dict({k: v.numpy() for k, v in reference.state_dict().items()})
  features = inception.make_feature_fn(traverse_util.unflatten_dict(flat, sep="/"))
  # Non-square and not 299: checks the resize and the H/W orientation too.
  images_01 = np.random.default_rng(0).uniform(0, 1, (2, 3, 75, 61)).astype(np.float32)
  with torch.no_grad():
    expected = reference(torch.from_numpy(images_01)).numpy()
  got = features(np.transpose(2 * images_01 - 1, (0, 2, 3, 1)))
  assert np.abs(got - expected).max() <= 1e-5 * np.abs(expected).max()


def test_converter_end_to_end(tmp_path, capsys):
  reference = FIDInceptionV3()
  _randomise(reference)
  pth, npz = tmp_path / "weights.pth", tmp_path / "out" / "fid_inception.npz"
  torch.save(reference.state_dict(), pth)
  convert.main(["--input", str(pth), "--output", str(npz)])
  assert "sha256" in capsys.readouterr().err  # Not the published file: a warning, not an error.
  loaded = traverse_util.flatten_dict(inception.load_variables(str(npz)), sep="/")
  np.testing.assert_array_equal(
      loaded["params/Mixed_6b/branch7x7_2/conv/kernel"],
      reference.Mixed_6b.branch7x7_2.conv.weight.detach().numpy().transpose(2, 3, 1, 0))
  np.testing.assert_array_equal(loaded["batch_stats/Mixed_7c/branch_pool/bn/var"],
                                reference.Mixed_7c.branch_pool.bn.running_var.numpy())
