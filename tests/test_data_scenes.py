"""The procedural scenes: determinism, splits, shapes and ranges, and agreement of depth with the panoptic labels."""
import numpy as np
import pytest

from fsq.data import raycast, scenes


def _scene_and_example(split, index, image_size, seed=0):
  """The Scene behind Scenes(split)[index], and the example itself."""
  rng = np.random.default_rng([seed, scenes.SPLIT_SALT[split], index])
  return scenes.sample_scene(rng), scenes.Scenes(split, image_size, seed=seed)[index]


def test_same_seed_and_index_give_identical_arrays():
  first, second = scenes.Scenes("train", 32)[7], scenes.Scenes("train", 32)[7]
  for key in first:
    np.testing.assert_array_equal(first[key], second[key])


def test_different_index_or_seed_gives_different_scene():
  source = scenes.Scenes("train", 32)
  assert not np.array_equal(source[0]["image"], source[1]["image"])
  assert not np.array_equal(source[0]["image"], scenes.Scenes("train", 32, seed=1)[0]["image"])


def test_train_and_validation_never_share_a_scene():
  train, validation = scenes.Scenes("train", 16), scenes.Scenes("validation", 16)
  train_images = {train[i]["image"].tobytes() for i in range(300)}
  assert not any(validation[i]["image"].tobytes() in train_images for i in range(300))
  assert len(train_images) == 300


@pytest.mark.parametrize("image_size", [32, 64])
def test_fields_shapes_dtypes_and_ranges(image_size):
  source = scenes.Scenes("validation", image_size)
  for index in range(20):
    example = source[index]
    assert example["image"].shape == (image_size, image_size, 3) and example["image"].dtype == np.uint8
    assert example["depth"].shape == (image_size, image_size) and example["depth"].dtype == np.float32
    assert 0.5 < example["depth"].min() and example["depth"].max() < 10.0
    for key in ("semantic", "instance"):
      assert example[key].shape == (image_size, image_size) and example[key].dtype == np.int32
    assert set(np.unique(example["semantic"])) <= set(range(1, len(scenes.SEMANTIC_NAMES)))
    assert example["label"].shape == () and 0 <= example["label"] < scenes.Scenes.num_classes
    assert example["image"].std() > 10  # Shaded, not flat.


def test_index_out_of_range_and_bad_arguments_fail():
  with pytest.raises(IndexError):
    scenes.Scenes("validation", 32, num_examples=5)[5]
  with pytest.raises(ValueError, match="split"):
    scenes.Scenes("test", 32)
  with pytest.raises(ValueError, match="image_size"):
    scenes.Scenes("train", 4)


@pytest.mark.parametrize("index", range(12))
def test_depth_and_panoptic_labels_agree(index):
  image_size = 48
  scene, example = _scene_and_example("validation", index, image_size)
  directions, forward = scenes._camera_rays(scene, image_size)
  origin = np.array([0.0, scene.camera_height, 0.0], np.float32)
  ray_length = example["depth"].ravel() / (forward @ directions)
  floor_t = raycast.plane_distance(origin, directions, axis=1, offset=0.0)
  wall_t = raycast.plane_distance(origin, directions, axis=2, offset=scene.wall_z)
  semantic, instance = example["semantic"].ravel(), example["instance"].ravel()

  # Stuff pixels lie on their plane; object pixels lie in front of both planes.
  np.testing.assert_allclose(ray_length[semantic == scenes.FLOOR], floor_t[semantic == scenes.FLOOR], rtol=1e-4)
  np.testing.assert_allclose(ray_length[semantic == scenes.WALL], wall_t[semantic == scenes.WALL], rtol=1e-4)
  things = semantic >= scenes.FIRST_THING
  assert np.all(ray_length[things] <= np.minimum(floor_t, wall_t)[things] + 1e-4)
  np.testing.assert_array_equal(things, instance > 0)

  # Each instance is one object of one class, at the distance of that object's own surface.
  for object_id in np.unique(instance[things]):
    pixels = instance == object_id
    assert np.all(semantic[pixels] == scenes.FIRST_THING + scene.kinds[object_id - 1])
    own_t = scene.objects[object_id - 1].intersect(origin, directions[:, pixels])
    np.testing.assert_allclose(ray_length[pixels], own_t, rtol=1e-4)

  visible = np.bincount(instance, minlength=len(scene.objects) + 1)[1:]
  assert example["label"] == scene.kinds[int(np.argmax(visible))]


def test_class_labels_are_roughly_balanced():
  source = scenes.Scenes("train", 16)
  counts = np.bincount([source[i]["label"] for i in range(400)], minlength=source.num_classes)
  assert counts.min() > 0.15 * 400, counts


@pytest.mark.parametrize("primitive", [raycast.Sphere(0.3, 4.0, 0.5), raycast.Box(0.0, 4.0, 0.4, 0.3, 0.5, 0.7),
                                       raycast.Cylinder(-0.2, 4.0, 0.4, 1.0), raycast.Cone(0.1, 4.0, 0.5, 1.2)])
def test_primitive_hits_are_on_the_surface_with_unit_normals(primitive):
  rng = np.random.default_rng(0)
  targets = np.array([[primitive.x], [0.5], [primitive.z]]) + rng.uniform(-0.6, 0.6, size=(3, 500))
  origin = np.array([0.0, 1.5, 0.0], np.float32)
  directions = (targets - origin[:, None]).astype(np.float32)
  directions /= np.linalg.norm(directions, axis=0)
  t = primitive.intersect(origin, directions)
  hit = np.isfinite(t)
  assert 50 < hit.sum() < 500
  points = origin[:, None] + t[hit] * directions[:, hit]
  normals = primitive.normal(points)
  np.testing.assert_allclose(np.linalg.norm(normals, axis=0), 1.0, atol=1e-4)
  assert np.all(np.sum(normals * directions[:, hit], axis=0) < 1e-3)  # Camera rays meet front faces.
  # Nudged back along the ray a point is outside: a ray from there hits the surface again at ~the same spot.
  again = primitive.intersect(points - 1e-2 * directions[:, hit], directions[:, hit])
  np.testing.assert_allclose(again, 1e-2, atol=1e-3)
