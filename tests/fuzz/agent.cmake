# SPDX-License-Identifier: Apache-2.0
# The agent's parsers of host input: ttrpc request frames and payloads, OCI specs and
# processes (incl. seccomp translation), passwd/group text, kernel command line.
nv_add_fuzz(agent_request_fuzz
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/agent_request_fuzz.cpp
  DEPS nv_agent_core)
