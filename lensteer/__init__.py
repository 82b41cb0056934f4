"""lensteer: locate misalignment directions and steer them at run time."""
__version__ = "0.1.0"
