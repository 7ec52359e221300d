DROP INDEX kyc_submissions_rejected_files;
ALTER TABLE kyc_submissions DROP COLUMN file_purged_at;
