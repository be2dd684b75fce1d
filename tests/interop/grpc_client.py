#!/usr/bin/env python3
"""Interop client: talks to an Orleans.KServe server with Debian's grpcio and stubs generated from the
project's own Contracts/Protos/grpc_service.proto (run-python-client.sh generates them into a temp folder and
puts it on PYTHONPATH).

Usage: grpc_client.py <grpc host:port> [<rest base url>]

Prints one JSON object: {"ok": bool, "grpcio": version, "results": {check: what was seen}, "failures": [...]}.
Exits 0 when every check passed, 1 when any check failed (each failure is also written to stderr).
"""

import json
import struct
import sys
import urllib.error
import urllib.request

import grpc
import google.protobuf

import grpc_service_pb2 as pb
import grpc_service_pb2_grpc as pb_grpc

TIMEOUT = 30.0


class Mismatch(Exception):
    """A check saw something other than what the protocol promises."""


def expect(condition, message):
    if not condition:
        raise Mismatch(message)


def expect_equal(actual, expected, what):
    if actual != expected:
        raise Mismatch(f"{what}: expected {expected!r}, got {actual!r}")


def double_request(values, request_id="py-1", raw=False):
    """ModelInferRequest for the `double` model (FP32 [batch, 2])."""
    request = pb.ModelInferRequest(model_name="double", id=request_id)
    tensor = request.inputs.add(name="input", datatype="FP32", shape=[len(values) // 2, 2])
    if raw:
        request.raw_input_contents.append(struct.pack(f"<{len(values)}f", *values))
    else:
        tensor.contents.fp32_contents.extend(values)
    return request


def call_fails(call, request, code):
    """Makes a call that must fail with `code`; returns the status name and detail seen."""
    try:
        call(request, timeout=TIMEOUT)
    except grpc.RpcError as error:
        expect_equal(error.code(), code, "status code")
        expect(error.details(), f"{code.name} came without a message")
        return {"code": error.code().name, "details": error.details()}
    raise Mismatch(f"the call succeeded, expected {code.name}")


def main(argv):
    if len(argv) not in (2, 3):
        print(__doc__, file=sys.stderr)
        return 2

    target = argv[1]
    rest = argv[2].rstrip("/") if len(argv) == 3 else None
    results = {}
    failures = []

    def check(name, body):
        try:
            results[name] = body()
        except Mismatch as mismatch:
            failures.append(f"{name}: {mismatch}")
        except grpc.RpcError as error:
            failures.append(f"{name}: unexpected gRPC error {error.code().name}: {error.details()}")
        except Exception as error:  # noqa: BLE001 - every other surprise is a failed check too
            failures.append(f"{name}: {type(error).__name__}: {error}")

    channel = grpc.insecure_channel(target)
    try:
        grpc.channel_ready_future(channel).result(timeout=TIMEOUT)
    except grpc.FutureTimeoutError:
        print(json.dumps({"ok": False, "failures": [f"could not connect to {target} within {TIMEOUT} s"]}))
        print(f"FAILED: could not connect to {target}", file=sys.stderr)
        return 1

    stub = pb_grpc.GRPCInferenceServiceStub(channel)

    def statistics_of_double():
        stats = stub.ModelStatistics(pb.ModelStatisticsRequest(name="double"), timeout=TIMEOUT).model_stats
        expect_equal(len(stats), 1, "ModelStatistics(double) entries")
        return stats[0]

    before = {}

    def statistics_before():
        stats = statistics_of_double()
        before["inference_count"] = stats.inference_count
        before["execution_count"] = stats.execution_count
        before["success"] = stats.inference_stats.success.count
        return {"inference_count": stats.inference_count, "execution_count": stats.execution_count}

    check("statistics_before", statistics_before)

    def server_live():
        live = stub.ServerLive(pb.ServerLiveRequest(), timeout=TIMEOUT).live
        expect_equal(live, True, "ServerLive.live")
        return live

    check("server_live", server_live)

    def server_ready():
        ready = stub.ServerReady(pb.ServerReadyRequest(), timeout=TIMEOUT).ready
        expect_equal(ready, True, "ServerReady.ready")
        return ready

    check("server_ready", server_ready)

    def server_metadata():
        metadata = stub.ServerMetadata(pb.ServerMetadataRequest(), timeout=TIMEOUT)
        expect_equal(metadata.name, "orleans-kserve", "ServerMetadata.name")
        expect(metadata.version, "ServerMetadata.version is empty")
        expect("model_repository" in metadata.extensions, f"ServerMetadata.extensions {list(metadata.extensions)} lack model_repository")
        return {"name": metadata.name, "version": metadata.version, "extensions": list(metadata.extensions)}

    check("server_metadata", server_metadata)

    def model_ready():
        expect_equal(stub.ModelReady(pb.ModelReadyRequest(name="double"), timeout=TIMEOUT).ready, True, "ModelReady(double)")
        expect_equal(stub.ModelReady(pb.ModelReadyRequest(name="zipmap"), timeout=TIMEOUT).ready, False, "ModelReady(zipmap)")
        return {"double": True, "zipmap": False}

    check("model_ready", model_ready)

    def model_metadata():
        metadata = stub.ModelMetadata(pb.ModelMetadataRequest(name="mlp"), timeout=TIMEOUT)
        expect_equal(metadata.name, "mlp", "ModelMetadata.name")
        expect_equal(metadata.platform, "onnxruntime_onnx", "ModelMetadata.platform")
        expect_equal(list(metadata.versions), ["1"], "ModelMetadata.versions")
        inputs = [(t.name, t.datatype, list(t.shape)) for t in metadata.inputs]
        outputs = [(t.name, t.datatype, list(t.shape)) for t in metadata.outputs]
        expect_equal(inputs, [("input", "FP32", [-1, 64])], "ModelMetadata.inputs")
        expect_equal([(n, d) for n, d, _ in outputs], [("probabilities", "FP32"), ("label", "INT64")], "ModelMetadata.outputs")
        return {"platform": metadata.platform, "versions": list(metadata.versions), "inputs": inputs, "outputs": outputs}

    check("model_metadata_mlp", model_metadata)

    def infer_typed():
        response = stub.ModelInfer(double_request([1.0, 2.0, 3.0, 4.0], "py-typed"), timeout=TIMEOUT)
        expect_equal(response.model_name, "double", "ModelInferResponse.model_name")
        expect_equal(response.id, "py-typed", "ModelInferResponse.id")
        expect_equal(len(response.outputs), 1, "number of outputs")
        output = response.outputs[0]
        expect_equal((output.name, output.datatype, list(output.shape)), ("output", "FP32", [2, 2]), "output tensor")
        expect_equal(len(response.raw_output_contents), 0, "raw_output_contents of a typed request")
        expect_equal(list(output.contents.fp32_contents), [2.0, 4.0, 6.0, 8.0], "fp32_contents")
        return list(output.contents.fp32_contents)

    check("infer_double_fp32_contents", infer_typed)

    def infer_raw():
        response = stub.ModelInfer(double_request([1.5, -2.0, 3.25, 1e6], "py-raw", raw=True), timeout=TIMEOUT)
        expect_equal(response.id, "py-raw", "ModelInferResponse.id")
        output = response.outputs[0]
        expect_equal((output.name, output.datatype, list(output.shape)), ("output", "FP32", [2, 2]), "output tensor")
        expect(not output.HasField("contents"), "a raw request's output also carries typed contents")
        expect_equal(len(response.raw_output_contents), 1, "raw_output_contents entries")
        raw = response.raw_output_contents[0]
        expect_equal(len(raw), 16, "raw output byte length")
        values = list(struct.unpack("<4f", raw))
        expect_equal(values, [3.0, -4.0, 6.5, 2e6], "raw output values")
        return values

    check("infer_double_raw_input_contents", infer_raw)

    elements = [b"hello", b"", b"\x00\xff\xfe binary", "grüße".encode("utf-8")]

    def bytes_request(raw):
        request = pb.ModelInferRequest(model_name="identity-bytes", id="py-bytes")
        tensor = request.inputs.add(name="input", datatype="BYTES", shape=[2, 2])
        if raw:
            # Triton's serialization of BYTES: each element a 4-byte little-endian length, then its bytes.
            request.raw_input_contents.append(b"".join(struct.pack("<I", len(e)) + e for e in elements))
        else:
            tensor.contents.bytes_contents.extend(elements)
        return request

    def infer_bytes():
        response = stub.ModelInfer(bytes_request(raw=False), timeout=TIMEOUT)
        output = response.outputs[0]
        expect_equal((output.datatype, list(output.shape)), ("BYTES", [2, 2]), "BYTES output tensor")
        expect_equal(list(output.contents.bytes_contents), elements, "bytes_contents")
        return [e.decode("latin-1") for e in output.contents.bytes_contents]

    check("infer_identity_bytes_contents", infer_bytes)

    def infer_bytes_raw():
        response = stub.ModelInfer(bytes_request(raw=True), timeout=TIMEOUT)
        output = response.outputs[0]
        expect_equal((output.datatype, list(output.shape)), ("BYTES", [2, 2]), "BYTES output tensor")
        raw = response.raw_output_contents[0]
        seen, offset = [], 0
        while offset < len(raw):
            (length,) = struct.unpack_from("<I", raw, offset)
            seen.append(raw[offset + 4:offset + 4 + length])
            offset += 4 + length
        expect_equal(seen, elements, "length-prefixed raw BYTES output")
        return len(raw)

    check("infer_identity_bytes_raw_length_prefixed", infer_bytes_raw)

    def stream_infer():
        requests = [
            double_request([1.0, 2.0], "py-s0"),
            double_request([3.0, 4.0], "py-s1", raw=True),
            double_request([5.0, 6.0], "py-s2"),
        ]
        answers = list(stub.ModelStreamInfer(iter(requests), timeout=TIMEOUT))
        expect_equal(len(answers), 3, "ModelStreamInfer answers")
        seen = []
        for index, answer in enumerate(answers):
            expect_equal(answer.error_message, "", f"stream answer {index} error_message")
            response = answer.infer_response
            if response.raw_output_contents:
                values = list(struct.unpack("<2f", response.raw_output_contents[0]))
            else:
                values = list(response.outputs[0].contents.fp32_contents)
            seen.append({"id": response.id, "values": values})
        expect_equal(seen, [
            {"id": "py-s0", "values": [2.0, 4.0]},
            {"id": "py-s1", "values": [6.0, 8.0]},
            {"id": "py-s2", "values": [10.0, 12.0]},
        ], "stream answers in order")
        return seen

    check("stream_infer_3", stream_infer)

    def model_config():
        config = stub.ModelConfig(pb.ModelConfigRequest(name="mlp"), timeout=TIMEOUT).config
        expect_equal(config.name, "mlp", "ModelConfig.name")
        expect_equal(config.platform, "onnxruntime_onnx", "ModelConfig.platform")
        expect_equal(config.backend, "onnxruntime", "ModelConfig.backend")
        expect_equal([(i.name, i.data_type, list(i.dims)) for i in config.input], [("input", pb.TYPE_FP32, [-1, 64])], "ModelConfig.input")
        label = [o for o in config.output if o.name == "label"]
        expect_equal([o.data_type for o in label], [pb.TYPE_INT64], "ModelConfig.output label data_type")
        expect(len(config.instance_group) >= 1 and config.instance_group[0].count >= 1, "ModelConfig.instance_group is empty")
        expect_equal(config.instance_group[0].kind, pb.ModelInstanceGroup.KIND_CPU, "instance_group kind")
        return {
            "name": config.name, "platform": config.platform, "backend": config.backend,
            "max_batch_size": config.max_batch_size, "instances": config.instance_group[0].count,
        }

    check("model_config_mlp", model_config)

    def statistics_after():
        expect(before, "no statistics were read before the inferences")
        stats = statistics_of_double()
        # This client ran 2 + 2 + 1 + 1 + 1 inferences (batch elements) on `double` in 5 executions.
        expect(stats.inference_count - before["inference_count"] >= 7,
               f"inference_count went from {before['inference_count']} to {stats.inference_count}, expected +7 or more")
        expect(stats.execution_count - before["execution_count"] >= 5,
               f"execution_count went from {before['execution_count']} to {stats.execution_count}, expected +5 or more")
        expect(stats.inference_stats.success.count - before["success"] >= 5,
               f"inference_stats.success.count went from {before['success']} to {stats.inference_stats.success.count}")
        expect(stats.last_inference > 0, "last_inference is 0")
        expect(stats.inference_stats.compute_infer.ns > 0, "compute_infer.ns is 0")
        everything = stub.ModelStatistics(pb.ModelStatisticsRequest(), timeout=TIMEOUT).model_stats
        expect("mlp" in [s.name for s in everything], "ModelStatistics() does not list mlp")
        return {"inference_count": stats.inference_count, "execution_count": stats.execution_count,
                "batch_sizes": sorted(b.batch_size for b in stats.batch_stats)}

    check("model_statistics_double", statistics_after)

    def repository_index():
        index = {m.name: m for m in stub.RepositoryIndex(pb.RepositoryIndexRequest(), timeout=TIMEOUT).models}
        expect("double" in index and "zipmap" in index, f"RepositoryIndex lists {sorted(index)}")
        expect_equal(index["double"].state, "READY", "RepositoryIndex double state")
        expect_equal(index["zipmap"].state, "UNAVAILABLE", "RepositoryIndex zipmap state")
        expect("not a tensor" in index["zipmap"].reason, f"zipmap reason {index['zipmap'].reason!r}")
        ready = [m.name for m in stub.RepositoryIndex(pb.RepositoryIndexRequest(ready=True), timeout=TIMEOUT).models]
        expect("zipmap" not in ready and "double" in ready, f"RepositoryIndex(ready=true) lists {ready}")
        return {name: index[name].state for name in sorted(index)}

    check("repository_index", repository_index)

    def kserve_repository_request():
        # KServe's clients name the model in field 1; the server's merged message must put model_name there.
        # Load/unload are not called: the shared fixture's models belong to other tests.
        encoded = pb.RepositoryModelLoadRequest(model_name="double").SerializeToString()
        expect_equal(encoded, b"\x0a\x06double", "RepositoryModelLoadRequest(model_name) encoding")
        encoded = pb.RepositoryModelUnloadRequest(model_name="double").SerializeToString()
        expect_equal(encoded, b"\x0a\x06double", "RepositoryModelUnloadRequest(model_name) encoding")
        return {"field1_bytes": encoded.hex(), "load_unload_called": False}

    check("kserve_repository_request_field1", kserve_repository_request)

    def unknown_model():
        bad = double_request([1.0, 2.0])
        bad.model_name = "no-such-model"
        return call_fails(stub.ModelInfer, bad, grpc.StatusCode.NOT_FOUND)

    check("error_unknown_model_not_found", unknown_model)

    def unknown_model_metadata():
        return call_fails(stub.ModelMetadata, pb.ModelMetadataRequest(name="no-such-model"), grpc.StatusCode.NOT_FOUND)

    check("error_unknown_model_metadata_not_found", unknown_model_metadata)

    def bad_shape():
        bad = double_request([1.0, 2.0])
        bad.inputs[0].shape[:] = [2, 2]
        return call_fails(stub.ModelInfer, bad, grpc.StatusCode.INVALID_ARGUMENT)

    check("error_bad_shape_invalid_argument", bad_shape)

    def failed_model():
        bad = double_request([1.0, 2.0])
        bad.model_name = "zipmap"
        return call_fails(stub.ModelInfer, bad, grpc.StatusCode.UNAVAILABLE)

    check("error_failed_model_unavailable", failed_model)

    if rest is not None:
        def rest_matches_grpc():
            body = json.dumps({"id": "py-rest", "inputs": [{"name": "input", "shape": [2, 2], "datatype": "FP32", "data": [1, 2, 3, 4]}]})
            request = urllib.request.Request(f"{rest}/v2/models/double/infer", data=body.encode(), headers={"Content-Type": "application/json"})
            with urllib.request.urlopen(request, timeout=TIMEOUT) as answer:
                rest_output = json.load(answer)["outputs"][0]
            grpc_output = stub.ModelInfer(double_request([1.0, 2.0, 3.0, 4.0]), timeout=TIMEOUT).outputs[0]
            expect_equal(rest_output["data"], list(grpc_output.contents.fp32_contents), "REST vs gRPC output")
            expect_equal(rest_output["shape"], list(grpc_output.shape), "REST vs gRPC shape")
            try:
                urllib.request.urlopen(f"{rest}/v2/models/no-such-model", timeout=TIMEOUT)
                raise Mismatch("REST metadata of an unknown model succeeded")
            except urllib.error.HTTPError as error:
                expect_equal(error.code, 404, "REST status of an unknown model")
            return {"data": rest_output["data"], "shape": rest_output["shape"]}

        check("rest_v2_infer_matches_grpc", rest_matches_grpc)

    channel.close()
    ok = not failures
    print(json.dumps({
        "ok": ok,
        "target": target,
        "grpcio": grpc.__version__,
        "protobuf": google.protobuf.__version__,
        "results": results,
        "failures": failures,
    }, sort_keys=True))
    for failure in failures:
        print(f"FAILED: {failure}", file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
