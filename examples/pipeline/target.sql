-- The pipeline demo's target schema: another structure, and keys of its own (AUTO_INCREMENT) for
-- clients and sales, which also take writes that do not come from the source.
CREATE DATABASE IF NOT EXISTS demo_pipe_crm;
CREATE TABLE IF NOT EXISTS demo_pipe_crm.clients (
  client_id BIGINT UNSIGNED AUTO_INCREMENT PRIMARY KEY,
  full_name VARCHAR(90) NOT NULL,
  email VARCHAR(80),
  origin VARCHAR(10) NOT NULL,
  since DATETIME(6)
);
CREATE TABLE IF NOT EXISTS demo_pipe_crm.sales (
  sale_id BIGINT UNSIGNED AUTO_INCREMENT PRIMARY KEY,
  client_id BIGINT UNSIGNED NOT NULL,
  placed DATETIME(6) NOT NULL,
  amount DECIMAL(14,2) NOT NULL,
  KEY (client_id)
);
CREATE TABLE IF NOT EXISTS demo_pipe_crm.sale_lines (
  line_id INT PRIMARY KEY,
  sale_id BIGINT UNSIGNED NOT NULL,
  sku VARCHAR(20) NOT NULL,
  qty INT NOT NULL,
  unit_price DECIMAL(10,2) NOT NULL,
  line_total DECIMAL(20,2) NOT NULL,
  KEY (sale_id)
);
