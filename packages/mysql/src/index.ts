/**
 * @dfs/mysql: the project's adapter to MySQL and MariaDB. Endpoints are parsed from URLs once;
 * sessions are opened with the project's settings and throw only classified errors; identifiers
 * are quoted by one helper; keys are discovered by one function.
 */
export {
  type ColumnInfo,
  describeTable,
  type ForeignKey,
  foreignKeys,
  showCreateDatabase,
  showCreateTable,
  type TableDescription,
} from "./describe.js";
export {
  DEFAULT_MYSQL_PORT,
  endpointName,
  type MysqlEndpoint,
  mysqlUrlProblem,
  parseMysqlUrl,
  urlHasTlsParams,
} from "./endpoint.js";
export {
  classifyMysqlError,
  kindOf,
  MysqlErrno,
  type MysqlErrorKind,
  type MysqlRole,
  mysqlErrorKind,
} from "./errors.js";
export { isPlainText, quoteId, quoteTable, sqlLiteral } from "./quote.js";
export { runScript, type ScriptStatement } from "./script.js";
export {
  APPLY_SESSION,
  connectionOptions,
  MysqlSession,
  READ_SESSION,
  type SessionOptions,
} from "./session.js";
export { SqlBytes } from "./sql-bytes.js";
export {
  type MysqlSslOption,
  type MysqlTls,
  type MysqlTlsInput,
  mysqlSslOption,
  resolveMysqlTls,
  SSL_MODES,
  type SslMode,
} from "./tls.js";
