"""Procedural 3-D scenes: the project's embedded default dataset (docs/data.md).

A room corner seen by a pinhole camera: a tiled floor (y = 0), a back wall (z = wall_z) and one to four primitives
resting on the floor, lit by a point light with Lambert + Blinn-Phong shading and hard shadows. Every pixel casts
one ray; the nearest hit names the pixel's depth, semantic class and instance, so the three maps always agree.
Scene `index` of a split is a pure function of (seed, split, index).
"""
import colorsys
import dataclasses
import functools
import math
from typing import Optional

import numpy as np

from fsq.data import raycast
from fsq.data.segments import canonical_segments
from fsq.data.source import Example, Source

SHAPES = ("sphere", "cube", "cylinder", "cone")  # `label` is an index into SHAPES.
SEMANTIC_NAMES = ("void", "floor", "wall") + SHAPES  # `semantic` indexes this; void (0) never occurs in scenes.
IS_THING = (False, False, False) + (True,) * len(SHAPES)
FLOOR, WALL, FIRST_THING = 1, 2, 3
# Mixed into every scene's seed, so a train scene is never a validation scene.
SPLIT_SALT = {"train": 0, "validation": 1}
DEFAULT_NUM_EXAMPLES = {"train": 1_000_000, "validation": 10_000}
_GAMMA = 2.2


@dataclasses.dataclass(frozen=True)
class Scene:
  """Everything a render needs. Angles in radians, lengths in metres, colours sRGB in [0, 1]."""
  camera_height: float
  pitch: float  # Downwards tilt of the optical axis.
  yaw: float
  fov: float  # Full field of view of the square image.
  wall_z: float
  floor_rgb: np.ndarray
  wall_rgb: np.ndarray
  skirting_rgb: np.ndarray
  skirting_height: float
  tile_size: float
  tile_contrast: float
  light_position: np.ndarray
  light_rgb: np.ndarray  # Radiant intensity: irradiance at 1 m facing the light.
  ambient: float
  specular: float
  objects: tuple
  kinds: tuple  # Index into SHAPES of each object.
  object_rgb: np.ndarray  # (num_objects, 3)


def _random_rgb(rng, saturation, value):
  return np.array(colorsys.hsv_to_rgb(rng.uniform(), rng.uniform(*saturation), rng.uniform(*value)), np.float32)


def _make_primitive(kind, x, z, size, rng):
  """A primitive of SHAPES[kind] whose footprint fits in a circle of radius `size` around (x, z)."""
  if kind == 0:
    return raycast.Sphere(x, z, radius=0.85 * size)
  if kind == 1:
    half_x, half_z = size * rng.uniform(0.55, 0.7), size * rng.uniform(0.55, 0.7)
    return raycast.Box(x, z, half_x, rng.uniform(0.6, 1.2) * max(half_x, half_z), half_z, rng.uniform(0, math.pi))
  radius = size * rng.uniform(0.6, 0.9)
  if kind == 2:
    return raycast.Cylinder(x, z, radius, height=radius * rng.uniform(1.2, 3.0))
  return raycast.Cone(x, z, radius, height=radius * rng.uniform(1.5, 3.0))


def _sample_objects(rng, yaw, fov, wall_z):
  """Places 1-4 objects without overlap in front of the camera; the first is larger and nearer (the usual label)."""
  num_objects = rng.integers(1, 5)
  kinds = rng.integers(0, len(SHAPES), size=num_objects)
  placed, placed_kinds, footprints = [], [], []
  for i, kind in enumerate(kinds):
    size = rng.uniform(0.45, 0.65) if i == 0 else rng.uniform(0.2, 0.42)
    for _ in range(20):
      distance = rng.uniform(2.6, 4.0) if i == 0 else rng.uniform(2.6, wall_z - 0.8)
      lateral = rng.uniform(-0.6, 0.6) * distance * math.tan(fov / 2)
      x = distance * math.sin(yaw) + lateral * math.cos(yaw)
      z = distance * math.cos(yaw) - lateral * math.sin(yaw)
      if z + size < wall_z - 0.05 and all(math.hypot(x - px, z - pz) > size + ps + 0.05 for px, pz, ps in footprints):
        placed.append(_make_primitive(kind, x, z, size, rng))
        placed_kinds.append(int(kind))
        footprints.append((x, z, size))
        break
  return tuple(placed), tuple(placed_kinds)


def sample_scene(rng: np.random.Generator) -> Scene:
  yaw, fov, wall_z = rng.uniform(-0.2, 0.2), math.radians(rng.uniform(50, 60)), rng.uniform(5.0, 8.0)
  objects, kinds = _sample_objects(rng, yaw, fov, wall_z)
  return Scene(
      camera_height=rng.uniform(1.0, 2.0), pitch=math.radians(rng.uniform(12, 28)), yaw=yaw, fov=fov, wall_z=wall_z,
      floor_rgb=_random_rgb(rng, (0.05, 0.4), (0.25, 0.6)),
      wall_rgb=_random_rgb(rng, (0.02, 0.25), (0.55, 0.9)),
      skirting_rgb=_random_rgb(rng, (0.0, 0.1), (0.3, 0.95)),
      skirting_height=rng.uniform(0.05, 0.15),
      tile_size=rng.uniform(0.4, 1.0), tile_contrast=rng.uniform(0.0, 0.15),
      light_position=np.array([rng.uniform(-3, 3), rng.uniform(2.5, 4.5), rng.uniform(0.5, wall_z - 2.0)],
                              np.float32),
      light_rgb=rng.uniform(7, 13) * np.array([1.0, rng.uniform(0.9, 1.0), rng.uniform(0.8, 1.0)], np.float32),
      ambient=rng.uniform(0.12, 0.3), specular=rng.uniform(0.05, 0.4),
      objects=objects, kinds=kinds,
      object_rgb=np.stack([_random_rgb(rng, (0.45, 0.9), (0.45, 0.95)) for _ in objects]),
  )


@functools.lru_cache(maxsize=8)
def _pixel_grid(image_size):
  """(2, N) pixel-centre coordinates in [-1, 1], row-major: x rightwards, y upwards."""
  centres = (np.arange(image_size, dtype=np.float32) + 0.5) / image_size * 2 - 1
  y, x = np.meshgrid(-centres, centres, indexing="ij")
  return np.stack([x.ravel(), y.ravel()])


def _camera_rays(scene, image_size):
  """Unit ray directions (3, N) through the pixel centres, and the optical axis (3,)."""
  cp, sp = math.cos(scene.pitch), math.sin(scene.pitch)
  cy, sy = math.cos(scene.yaw), math.sin(scene.yaw)
  forward = np.array([sy * cp, -sp, cy * cp], np.float32)
  right = np.array([cy, 0.0, -sy], np.float32)
  up = np.cross(forward, right)
  grid = _pixel_grid(image_size) * math.tan(scene.fov / 2)
  directions = forward[:, None] + right[:, None] * grid[0] + up[:, None] * grid[1]
  return directions / _norm(directions), forward


def _dot(a, b):
  return a[0] * b[0] + a[1] * b[1] + a[2] * b[2]


def _norm(vectors):
  return np.sqrt(_dot(vectors, vectors))


def _albedo_and_normals(scene, surface, points):
  """Linear-light albedo (3, N) and unit normals (3, N) of the surface hit by each ray."""
  colours = np.concatenate([scene.floor_rgb[:, None], scene.wall_rgb[:, None], scene.object_rgb.T], axis=1)
  plane_normals = np.zeros_like(colours)
  plane_normals[1, 0], plane_normals[2, 1] = 1.0, -1.0  # Floor up, wall towards the camera.
  srgb, normals = colours[:, surface], plane_normals[:, surface]
  tiles = np.floor(points[0] / scene.tile_size) + np.floor(points[2] / scene.tile_size)
  srgb *= np.where(surface == 0, 1 + scene.tile_contrast * (2 * (tiles % 2) - 1), 1.0)
  srgb = np.where((surface == 1) & (points[1] < scene.skirting_height), scene.skirting_rgb[:, None], srgb)
  for i, obj in enumerate(scene.objects):
    hit = np.flatnonzero(surface == 2 + i)
    normals[:, hit] = obj.normal(points[:, hit])
  return srgb**_GAMMA, normals


def _shade(scene, surface, points, normals, albedo, directions):
  """Ambient + Lambert + Blinn-Phong (objects only) in linear light, with hard shadows from the objects."""
  to_light = scene.light_position[:, None] - points
  light_distance = _norm(to_light)
  to_light /= light_distance
  cosine = np.maximum(_dot(normals, to_light), 0.0)
  lit = np.flatnonzero(cosine > 0)
  shadow_origins = points[:, lit] + 1e-3 * normals[:, lit]
  for obj in scene.objects:
    blocked = obj.intersect(shadow_origins, to_light[:, lit]) < light_distance[lit]
    cosine[lit[blocked]] = 0.0
  irradiance = scene.light_rgb[:, None] * (cosine / light_distance**2)
  halfway = to_light - directions
  halfway /= _norm(halfway)
  highlight = np.where((cosine > 0) & (surface >= 2), np.maximum(_dot(normals, halfway), 0.0) ** 32, 0.0)
  ambient = scene.ambient * (0.7 + 0.3 * normals[1])  # Sky-facing surfaces get more ambient light.
  return albedo * (ambient + irradiance) + scene.specular * highlight * irradiance


def render(scene: Scene, image_size: int) -> Example:
  origin = np.array([0.0, scene.camera_height, 0.0], np.float32)
  directions, forward = _camera_rays(scene, image_size)
  distances = np.stack([raycast.plane_distance(origin, directions, axis=1, offset=0.0),
                        raycast.plane_distance(origin, directions, axis=2, offset=scene.wall_z)]
                       + [obj.intersect(origin, directions) for obj in scene.objects])
  surface = np.argmin(distances, axis=0)  # 0 floor, 1 wall, 2 + i object i.
  t = np.take_along_axis(distances, surface[None], axis=0)[0]
  points = origin[:, None] + t * directions
  albedo, normals = _albedo_and_normals(scene, surface, points)
  linear_rgb = _shade(scene, surface, points, normals, albedo, directions)
  rgb_hwc = (np.clip(linear_rgb, 0.0, 1.0) ** (1 / _GAMMA)).T.reshape(image_size, image_size, 3)

  num_objects = len(scene.objects)
  semantic = np.array([FLOOR, WALL] + [FIRST_THING + k for k in scene.kinds], np.int32)[surface]
  instance = np.arange(-1, num_objects + 1, dtype=np.int32).clip(0)[surface]
  visible_pixels = np.bincount(instance, minlength=num_objects + 1)[1:]
  shape = (image_size, image_size)
  return {
      "image": np.round(rgb_hwc * 255).astype(np.uint8),
      "depth": (t * (forward @ directions)).reshape(shape),  # z-depth along the optical axis, like a Kinect.
      "semantic": semantic.reshape(shape),
      "instance": instance.reshape(shape),
      "segments": canonical_segments(semantic.reshape(shape), instance.reshape(shape), IS_THING),
      "label": np.int32(scene.kinds[int(np.argmax(visible_pixels))]),
  }


class Scenes(Source):
  """The procedural scenes as a Source: `split` 'train' or 'validation', square images of `image_size` px."""

  num_classes = len(SHAPES)
  semantic_names = SEMANTIC_NAMES
  is_thing = IS_THING

  def __init__(self, split: str = "train", image_size: int = 64, seed: int = 0,
               num_examples: Optional[int] = None):
    if split not in SPLIT_SALT:
      raise ValueError(f"scenes split must be one of {sorted(SPLIT_SALT)}, got {split!r}")
    if not 8 <= image_size <= 512:
      raise ValueError(f"scenes image_size must be in [8, 512], got {image_size}")
    self.split, self.image_size, self.seed = split, image_size, seed
    self.num_examples = DEFAULT_NUM_EXAMPLES[split] if num_examples is None else num_examples

  def __len__(self):
    return self.num_examples

  def get(self, index, rng=None):
    del rng  # Every scene is already a fresh random draw: no augmentation.
    index = self._check_index(index)
    scene_rng = np.random.default_rng([self.seed, SPLIT_SALT[self.split], index])
    return render(sample_scene(scene_rng), self.image_size)
