"""``vpe.api`` (VPP 26.10): version information."""

NAME = "vpe"

API = """
define show_version {
  u32 client_index;
  u32 context;
};

define show_version_reply {
  u32 context;
  i32 retval;
  string program[32];
  string version[32];
  string build_date[32];
  string build_directory[256];
};
"""
