// The project's wire contracts, generated from dfs/v1/*.proto by ts-proto (see buf.gen.yaml).

export {
  CaptureClient,
  type CaptureServer,
  CaptureService,
  DlqEntry,
  DpuClient,
  type DpuServer,
  DpuService,
  Empty,
  HealthResponse,
  ListDlqRequest,
  ListDlqResponse,
  RelmgrClient,
  type RelmgrServer,
  RelmgrService,
  ReplayDlqRequest,
  ReplayDlqResponse,
  SetPositionRequest,
  SnapshotRequest,
  SnapshotResponse,
  StageStatus,
} from "./gen/dfs/v1/control.js";
export {
  ChangeBatch,
  Column,
  DdlEvent,
  Heartbeat,
  Op,
  RowChange,
  SourcePosition,
  Value,
} from "./gen/dfs/v1/envelope.js";
