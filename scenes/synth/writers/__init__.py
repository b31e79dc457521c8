"""Writers of simulated logs in the AV2, KITTI, nuScenes and Cityscapes on-disk formats."""
