#!/bin/bash
# Sourced by the mysql image's entrypoint on the target's first start (docker-entrypoint-initdb.d):
# the user the DPUs write as, with the password from the Docker secret target_password. The sync
# use creates the source's databases and tables on the target and runs the source's DDL, and the
# DPUs keep their checkpoints in _dfs (dpu.metaDatabase), hence every privilege but GRANT OPTION.
dfs_password="$(cat /run/secrets/target_password)"
dfs_password="${dfs_password//\\/\\\\}"
dfs_password="${dfs_password//\'/\'\'}"
docker_process_sql --database=mysql <<SQL
CREATE USER 'dfs'@'%' IDENTIFIED BY '${dfs_password}';
GRANT ALL PRIVILEGES ON *.* TO 'dfs'@'%';
SQL
unset dfs_password
