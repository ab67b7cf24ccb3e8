# One image recipe for every service (PORT only sets the default port and EXPOSE; Kubernetes sets env PORT):
#   docker build --build-arg SERVICE=ticket-svc --build-arg PACKAGE=ticket_svc --build-arg PORT=8082 -t helpdesk/ticket-svc .
# SERVICE=all installs every service in one image (deploy/compose.yaml runs them all from it,
# choosing each with APP_PACKAGE and PORT, and runs every migration from it)
ARG PYTHON_IMAGE=python:3.11-slim

FROM ${PYTHON_IMAGE} AS build
ARG SERVICE
RUN test -n "$SERVICE" || (echo "--build-arg SERVICE=<dir under services/> is required" && false)
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
RUN python -m venv /opt/venv
COPY libs/common /src/libs/common
COPY services /src/services
RUN if [ "$SERVICE" = all ]; then set -- /src/services/*/; else set -- "/src/services/${SERVICE}"; fi \
    && /opt/venv/bin/pip install /src/libs/common "$@"

FROM ${PYTHON_IMAGE}
ARG SERVICE
ARG PACKAGE
ARG PORT=8080
RUN test -n "$PACKAGE" || (echo "--build-arg PACKAGE=<python package, e.g. ticket_svc> is required" && false)
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    APP_PACKAGE=${PACKAGE} \
    PORT=${PORT}
RUN groupadd --system --gid 10001 app && useradd --system --uid 10001 --gid app --no-create-home app
COPY --from=build /opt/venv /opt/venv
USER 10001:10001
EXPOSE ${PORT}
# migrations are a separate step: `python -m helpdesk_common.migrate $APP_PACKAGE` (init container / Job)
CMD ["sh", "-c", "exec uvicorn --factory ${APP_PACKAGE}.main:create_app --host 0.0.0.0 --port ${PORT} --loop uvloop --http httptools --no-access-log --no-proxy-headers --no-server-header --timeout-keep-alive 75"]
