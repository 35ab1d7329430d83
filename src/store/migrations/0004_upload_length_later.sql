-- A gateway may start uploading a package while it is still sealing it, and say its length once sealed (tus
-- creation-defer-length): until then the upload's length is unknown (null).
alter table transfer_upload alter column length drop not null;
alter table transfer_upload add constraint transfer_upload_received_bytes_known check (received_bytes >= 0);
-- An upload begun while its package was sealed, and left when that sealing did not finish (the gateway stopped, its
-- disk filled), is superseded once its image arrives by another upload.
alter table transfer_upload drop constraint transfer_upload_state_check;
alter table transfer_upload add constraint transfer_upload_state_check
  check (state in ('receiving', 'received', 'stored', 'rejected', 'superseded'));
