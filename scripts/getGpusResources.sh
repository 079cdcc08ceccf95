#!/usr/bin/env bash
# Spark GPU discovery script (spark.executor.resource.gpu.discoveryScript,
# spark.worker.resource.gpu.discoveryScript): prints the node's NVIDIA GPUs
# as Spark's ResourceInformation JSON, {"name":"gpu","addresses":["0","1"]}.
# The jar carries it as gocaffe/getGpusResources.sh:
#   unzip -p gocaffe.jar gocaffe/getGpusResources.sh > getGpusResources.sh
# No GPU (or no nvidia-smi): an empty address list.
addrs=$(nvidia-smi --query-gpu=index --format=csv,noheader 2>/dev/null | sed -e 's/[^0-9]//g' -e '/^$/d' -e 's/.*/"&"/' | paste -sd, -)
echo "{\"name\":\"gpu\",\"addresses\":[${addrs}]}"
