"""The checked-in stubs are exactly what proto/log_service.proto generates, and match the contract."""

import subprocess
import sys
from pathlib import Path

import pytest

from grpc_user.pb import log_service_pb2 as pb

ROOT = Path(__file__).resolve().parent.parent
STUBS = ("log_service_pb2.py", "log_service_pb2.pyi", "log_service_pb2_grpc.py", "log_service_pb2_grpc.pyi")
# mypy-protobuf's plugin, installed beside this interpreter: the typed stub of the service (make lint reads it).
MYPY_GRPC_PLUGIN = Path(sys.executable).parent / "protoc-gen-mypy_grpc"


@pytest.mark.slow
def test_checked_in_stubs_match_the_proto(tmp_path):
    command = [
        sys.executable, "-m", "grpc_tools.protoc", "-Igrpc_user/pb=proto",
        f"--python_out={tmp_path}", f"--pyi_out={tmp_path}", f"--grpc_python_out={tmp_path}",
        f"--plugin=protoc-gen-mypy_grpc={MYPY_GRPC_PLUGIN}", f"--mypy_grpc_out={tmp_path}", "proto/log_service.proto",
    ]  # fmt: skip
    subprocess.run(command, cwd=ROOT, check=True)
    for name in STUBS:
        generated = (tmp_path / "grpc_user" / "pb" / name).read_text()
        assert generated == (ROOT / "grpc_user" / "pb" / name).read_text(), f"{name} drifted: run make proto"


def test_wire_contract_names_and_numbers():
    file = pb.DESCRIPTOR
    assert file.package == "logservice"
    service = file.services_by_name["LogService"]
    assert [m.name for m in service.methods] == ["WriteLog", "BatchWriteLog", "QueryLog"]
    assert dict(pb.LogLevel.items()) == {"DEBUG": 0, "INFO": 1, "WARN": 2, "ERROR": 3, "FATAL": 4}
    expected = {
        "LogEntry": {"id": 1, "service_name": 2, "level": 3, "message": 4, "timestamp": 5, "metadata": 6,
                     "trace_id": 7, "span_id": 8},
        "WriteLogRequest": {"log_entry": 1},
        "WriteLogResponse": {"success": 1, "error_message": 2, "log_id": 3},
        "BatchWriteLogRequest": {"log_entries": 1},
        "BatchWriteLogResponse": {"success": 1, "error_message": 2, "log_ids": 3},
        "QueryLogRequest": {"service_name": 1, "level": 2, "start_time": 3, "end_time": 4, "metadata_filters": 5,
                            "trace_id": 6, "limit": 7, "offset": 8},
        "QueryLogResponse": {"logs": 1, "total_count": 2, "success": 3, "error_message": 4},
    }  # fmt: skip
    for message, fields in expected.items():
        descriptor = file.message_types_by_name[message]
        assert {f.name: f.number for f in descriptor.fields} == fields, message
