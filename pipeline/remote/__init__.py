"""Reaching devices other than this machine: RPC tracker and servers, and an emulated aarch64 board."""
