/** The hub's own MESH mailbox and where the MESH server is. */
export interface MeshSettings {
  /** Base URL of the MESH server, e.g. https://mesh.example.nhs.uk */
  url: string;
  /** The hub's mailbox ID. */
  mailbox: string;
  password: string;
}
