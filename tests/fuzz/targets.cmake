# SPDX-License-Identifier: MIT
# The fuzz targets (tests/fuzz/fuzz_<name>.cpp) of this configuration and the vstash sources
# they need, shared by the libFuzzer build (tests/fuzz/CMakeLists.txt) and the corpus replay
# of the normal test run (tests/suites/fuzz.cmake).
set(vstash_fuzz_targets npyheader filter profile jsonl)
set(vstash_fuzz_sources
  src/array.cpp src/filter.cpp src/profile.cpp src/io/npyheader.cpp src/io/jsonl.cpp src/io/untrusted.cpp
  src/util/base64.cpp src/util/uuid.cpp src/util/floatformat.cpp src/util/scrub.cpp
  backends/registry.cpp)  # the profile keys (no VSTASH_HAVE_*: no store factories)
if(VSTASH_WITH_QDRANT OR VSTASH_WITH_PINECONE)
  list(APPEND vstash_fuzz_sources backends/backend.cpp backends/common/rowcodec.cpp backends/http/httpclient.cpp
       backends/http/statuspolicy.cpp backends/http/curltransfer.cpp backends/http/tlsoptions.cpp
       backends/http/httptext.cpp backends/http/batchplan.cpp backends/common/catalog.cpp)
endif()
if(VSTASH_WITH_QDRANT)
  list(APPEND vstash_fuzz_targets qdrant)
  list(APPEND vstash_fuzz_sources backends/qdrant/qdrantpoints.cpp backends/qdrant/qdrantclient.cpp
       backends/qdrant/qdrantdistribution.cpp backends/qdrant/qdrantshards.cpp)
endif()
if(VSTASH_WITH_PINECONE)
  list(APPEND vstash_fuzz_targets pinecone)
  list(APPEND vstash_fuzz_sources backends/pinecone/pineconerecords.cpp backends/pinecone/pineconefilter.cpp
       backends/pinecone/pineconecontrol.cpp)
endif()
