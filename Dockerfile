# syntax=docker/dockerfile:1
# skysift serving image: slim, non-root, answers the managed-endpoint convention (GET /ping,
# POST /invocations on $PORT, default 8080) besides skysift's own routes.
#
#   docker build -t skysift .                                   # model mounted at run time:
#   docker run --rm -p 8080:8080 -v "$PWD/runs/kepler:/opt/ml/model:ro" skysift
#
# One image per model instead (the bundle copied in): a two-line Dockerfile on top of this one, with
# the run directory as its build context (this repository's .dockerignore lets only src/ through):
#   printf 'FROM skysift\nCOPY --chown=skysift . /opt/ml/model\n' | docker build -t skysift-kepler -f - runs/kepler
#
# torch comes from the CPU wheel index: PyPI's Linux wheel pulls several GB of CUDA libraries.
# Pass --build-arg TORCH_INDEX=<mirror> where that index is not reachable.

ARG PYTHON=3.11

FROM python:${PYTHON}-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu
RUN pip install --index-url "$TORCH_INDEX" torch==2.14.1 torchvision==0.29.1
COPY pyproject.toml README.md /src/
COPY src /src/src
RUN pip install /src torch==2.14.1 torchvision==0.29.1

FROM python:${PYTHON}-slim
# libgomp: LightGBM's OpenMP runtime (the transients lgbm model)
RUN apt-get update && apt-get install -y --no-install-recommends libgomp1 \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --create-home --home-dir /home/skysift skysift \
    && mkdir -p /opt/ml/model && chown skysift /opt/ml/model
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    SKYSIFT_HOST=0.0.0.0 \
    PORT=8080 \
    SKYSIFT_MODELS=/opt/ml/model \
    SKYSIFT_NO_PROGRESS=1 \
    MPLCONFIGDIR=/tmp/matplotlib \
    PYTHONDONTWRITEBYTECODE=1
USER skysift
WORKDIR /home/skysift
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/ping' % os.environ.get('PORT', '8080'), timeout=4)"]
# `docker run IMAGE serve` (how SageMaker starts a container) and `docker run IMAGE` do the same
ENTRYPOINT ["skysift"]
CMD ["serve"]
