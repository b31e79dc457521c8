"""Writers of simulated logs in real on-disk formats, each read back by the format's own devkit.

- `av2`: AV2 sensor-dataset logs (`write_av2_log`); `av2_mf`: AV2 motion-forecasting scenarios (`write_av2_scenarios`);
- `kitti`: KITTI raw drives with depth ground truth (`write_kitti_drive`);
- `nuscenes`: one nuScenes-format database (`NuScenesWriter`, `write_nuscenes`);
- `cityscapes`: Cityscapes-style folders per domain style (`write_cityscapes`);
- `export`: simulate N logs and write them in one format (`write_synthetic_dataset`, the `drivestack synth` command).
"""
