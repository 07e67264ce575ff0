"""Blind readers: a sheet of uncaptioned images, readers' answers scored against its key,
and the figures written back into the studies the images came from."""
