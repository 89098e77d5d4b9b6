# Multi-stage build: compile with the Rust toolchain, ship a slim runtime
# that runs as the unprivileged postern user. No secret is baked in: the key
# and config come from the environment and a mounted config.yaml at run time
# (docker-compose.yml); .dockerignore keeps target/ and config/ out of the context.
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
ARG FEATURES=""
RUN cargo build --locked --release ${FEATURES:+--features $FEATURES} && cp target/release/postern /postern
# The AI tier loads ONNX Runtime at run time; take the library from the PyPI wheel.
RUN mkdir -p /ort && case ",$FEATURES," in *,ai,*) bash scripts/onnxruntime.sh /ort ;; esac

FROM debian:bookworm-slim
# The data directory must exist, owned by postern, before VOLUME: a new named
# volume takes its owner and mode from the image (root:root otherwise).
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates && rm -rf /var/lib/apt/lists/* \
 && useradd --system --user-group --home-dir /var/lib/postern --no-create-home --shell /usr/sbin/nologin postern \
 && install -d -o postern -g postern -m 0700 /var/lib/postern
COPY --from=build /postern /usr/bin/postern
COPY rules /usr/share/postern/rules
COPY models /usr/share/postern/models
COPY --from=build /ort /usr/lib/postern
USER postern
ENV POSTERN_DATA_DIR=/var/lib/postern POSTERN_CONFIG=/etc/postern/config.yaml POSTERN_LISTEN=0.0.0.0:8025 POSTERN_LOG_FORMAT=json
VOLUME /var/lib/postern
ENTRYPOINT ["/usr/bin/postern"]
CMD ["run"]
