# One image for every part: `sisyphus scheduler`, `sisyphus guardian`, `sisyphus dispatcher`,
# `sisyctl`.
FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --bin sisyphus --bin sisyctl

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates util-linux \
    && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/target/release/sisyphus /src/target/release/sisyctl /usr/local/bin/
COPY examples /examples
ENTRYPOINT ["sisyphus"]
