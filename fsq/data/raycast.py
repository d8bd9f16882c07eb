"""Ray intersection with the analytic primitives of the procedural scenes.

World frame: y is up, the floor is the plane y = 0, every primitive rests on it. Vectors are stored component-first,
(3,) or (3, N), so that the arithmetic runs on contiguous rows. Rays are `origin + t * direction` with unit
directions (3, N) and an origin (3,) shared by camera rays or (3, N) for shadow rays. `intersect` returns the distance
t (N,) of the nearest hit beyond `t_min`, np.inf where the ray misses; `normal` maps hit points (3, M) to unit
normals (3, M).
"""
import dataclasses
import math

import numpy as np

_NO_HIT = np.float32(np.inf)


def _nearest_valid_root(a, half_b, c, is_valid, t_min):
  """Smallest root t > t_min of a t^2 + 2 half_b t + c = 0 for which is_valid(t) holds, else inf."""
  with np.errstate(invalid="ignore", divide="ignore"):
    sqrt_disc = np.sqrt(half_b * half_b - a * c)  # NaN where the ray misses: every comparison below is False.
    t0 = (-half_b - sqrt_disc) / a
    t1 = (-half_b + sqrt_disc) / a
  near, far = np.minimum(t0, t1), np.maximum(t0, t1)
  return np.where((near > t_min) & is_valid(near), near, np.where((far > t_min) & is_valid(far), far, _NO_HIT))


def _rotate_y(x, y, z, angle):
  """Components of (x, y, z) rotated by `angle` radians about the vertical axis."""
  cos, sin = math.cos(angle), math.sin(angle)
  return cos * x + sin * z, y, cos * z - sin * x


@dataclasses.dataclass(frozen=True)
class Sphere:
  x: float
  z: float
  radius: float

  def intersect(self, origin, direction, t_min=0.0):
    ox, oy, oz = origin[0] - self.x, origin[1] - self.radius, origin[2] - self.z
    half_b = ox * direction[0] + oy * direction[1] + oz * direction[2]
    c = ox * ox + oy * oy + oz * oz - self.radius**2
    return _nearest_valid_root(1.0, half_b, c, lambda t: True, t_min)

  def normal(self, points):
    return (points - np.array([[self.x], [self.radius], [self.z]], np.float32)) / self.radius


@dataclasses.dataclass(frozen=True)
class Box:
  """A box of half extents (half_x, half_y, half_z), turned by `yaw` radians about the vertical axis."""
  x: float
  z: float
  half_x: float
  half_y: float
  half_z: float
  yaw: float

  def _to_local(self, points):
    return np.stack(_rotate_y(points[0] - self.x, points[1] - self.half_y, points[2] - self.z, -self.yaw))

  def intersect(self, origin, direction, t_min=0.0):
    # Slab method: the ray is inside the box between the last entry and the first exit over the three slabs.
    local_origin = self._to_local(origin).reshape(3, -1)  # (3, 1) for a shared origin.
    local_direction = np.stack(_rotate_y(*direction, -self.yaw))
    half = np.array([[self.half_x], [self.half_y], [self.half_z]], np.float32)
    with np.errstate(divide="ignore", invalid="ignore"):
      t_lo = (-half - local_origin) / local_direction
      t_hi = (half - local_origin) / local_direction
    t_enter = np.max(np.minimum(t_lo, t_hi), axis=0)
    t_exit = np.min(np.maximum(t_lo, t_hi), axis=0)
    t = np.where(t_enter > t_min, t_enter, t_exit)
    return np.where((t_enter <= t_exit) & (t > t_min), t, _NO_HIT)

  def normal(self, points):
    local = self._to_local(points) / np.array([[self.half_x], [self.half_y], [self.half_z]], np.float32)
    axis = np.argmax(np.abs(local), axis=0)  # The face hit is the one whose slab coordinate is at +-1.
    local_normal = np.zeros_like(local)
    columns = np.arange(local.shape[1])
    local_normal[axis, columns] = np.sign(local[axis, columns])
    return np.stack(_rotate_y(*local_normal, self.yaw))


@dataclasses.dataclass(frozen=True)
class Cylinder:
  """A vertical cylinder standing on the floor, with a flat top cap."""
  x: float
  z: float
  radius: float
  height: float

  def intersect(self, origin, direction, t_min=0.0):
    ox, oy, oz = origin[0] - self.x, origin[1], origin[2] - self.z
    dx, dy, dz = direction
    in_height = lambda t: np.abs(oy + t * dy - 0.5 * self.height) <= 0.5 * self.height
    side = _nearest_valid_root(dx * dx + dz * dz, ox * dx + oz * dz, ox * ox + oz * oz - self.radius**2,
                               in_height, t_min)
    with np.errstate(divide="ignore", invalid="ignore"):
      t_cap = (self.height - oy) / dy
    on_cap = ((ox + t_cap * dx) ** 2 + (oz + t_cap * dz) ** 2 <= self.radius**2) & (t_cap > t_min)
    return np.minimum(side, np.where(on_cap, t_cap, _NO_HIT))

  def normal(self, points):
    on_cap = points[1] > self.height - 1e-4
    radial = [(points[0] - self.x) / self.radius, np.zeros_like(points[1]), (points[2] - self.z) / self.radius]
    return np.stack([np.where(on_cap, up, side) for up, side in zip((0.0, 1.0, 0.0), radial)])


@dataclasses.dataclass(frozen=True)
class Cone:
  """A vertical cone standing on its base, apex up."""
  x: float
  z: float
  radius: float
  height: float

  def intersect(self, origin, direction, t_min=0.0):
    # Surface: (x - cx)^2 + (z - cz)^2 = k^2 (height - y)^2 with k = radius / height and 0 <= y <= height.
    k2 = (self.radius / self.height) ** 2
    ox, oq, oz = origin[0] - self.x, self.height - origin[1], origin[2] - self.z
    dx, dy, dz = direction
    a = dx * dx + dz * dz - k2 * dy * dy
    half_b = ox * dx + oz * dz + k2 * oq * dy
    c = ox * ox + oz * oz - k2 * oq * oq
    in_height = lambda t: np.abs(oq - t * dy - 0.5 * self.height) <= 0.5 * self.height
    return _nearest_valid_root(a, half_b, c, in_height, t_min)

  def normal(self, points):
    rx, rz = points[0] - self.x, points[2] - self.z
    normal = np.stack([rx, self.radius / self.height * np.hypot(rx, rz), rz])
    return normal / np.maximum(np.sqrt(np.sum(normal * normal, axis=0)), 1e-6)


def plane_distance(origin, direction, axis, offset, t_min=0.0):
  """Distance to the plane {p : p[axis] = offset}, inf where the ray runs away from it or parallel."""
  with np.errstate(divide="ignore", invalid="ignore"):
    t = (offset - origin[axis]) / direction[axis]
  return np.where(t > t_min, t, _NO_HIT)
