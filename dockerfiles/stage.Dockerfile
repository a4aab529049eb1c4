# A fogverse stage image: the project and its dependencies on a Python base.
#
# The build context is prepared by `python -m deploy_scripts.docker_images stage`
# (packages installed on the host with `pip install --target`, so no step here needs
# a package index): deps/ the dependencies, project/ fogverse itself, app/ the
# examples and any app files given. BASE defaults to the official slim image for
# users with a registry; the project's tests pass a locally imported Debian base.
ARG BASE=python:3.11-slim
FROM ${BASE}
ENV PYTHONPATH=/app:/opt/fogverse/project:/opt/fogverse/deps \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1
# Dependencies first: they change less often than the project, so their layer is reused.
COPY deps /opt/fogverse/deps
COPY project /opt/fogverse/project
COPY app /app
WORKDIR /app
CMD ["python3", "-m", "fogverse", "--help"]
