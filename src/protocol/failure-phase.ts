/**
 * Where a failure between a mobile unit and the hub (or the hub and the PACS) happened, in words support staff
 * can act on. One vocabulary for the gateway log, the gateway status page and the hub's support page, so three
 * stacked faults show as three named phases rather than one timeout (docs/runbook-live-clinic.md).
 */
export const FAILURE_PHASES = [
  'dns',
  'tcp_connect',
  'tls_handshake',
  'certificate_rejected',
  'http_status',
  'silent_link',
  'link_dropped',
  'upload_offset_mismatch',
  'decrypt_auth',
  'pacs_unreachable',
  'pacs_refused',
  'disk_full',
  'modality',
  'unknown',
] as const;
export type FailurePhase = (typeof FAILURE_PHASES)[number];

export interface PhaseDescription {
  /** Short name of the phase, as a heading. */
  label: string;
  /** What to do first, for whoever is looking (trailer staff or hub support). */
  action: string;
}

export const PHASE_DESCRIPTIONS: Record<FailurePhase, PhaseDescription> = {
  dns: {
    label: 'Finding the hub (DNS)',
    action:
      'The hub’s name could not be looked up. Check the gateway’s hub address for typos, then the router’s DNS settings or the SIM’s data connection.',
  },
  tcp_connect: {
    label: 'Connecting to the hub (TCP)',
    action:
      'Nothing answered at the hub’s address and port. Check the router has signal and data, then that the hub’s gateway port is open in its firewall.',
  },
  tls_handshake: {
    label: 'Secure connection (TLS handshake)',
    action:
      'The hub’s address answered but the secure handshake did not finish. Something between the unit and the hub (a proxy, a captive portal or a firewall) may be holding or changing traffic: try another network.',
  },
  certificate_rejected: {
    label: 'Certificate rejected',
    action:
      'One side did not trust the other’s certificate (the message says which). If the hub refused this gateway’s certificate (revoked, or enrolled with another hub), enrol it again from the hub’s Gateways page. If the gateway does not trust the hub’s certificate, check the gateway’s hub address: something else may be answering there.',
  },
  http_status: {
    label: 'Hub refused the request (HTTP status)',
    action:
      'The hub answered with an error. The message says why; a 5xx means a problem at the hub: tell the hub’s support team.',
  },
  silent_link: {
    label: 'Link carries nothing',
    action:
      'The connection looked open but nothing came through it, so it was dropped and is being made again. If it keeps happening, restart the router or move the unit for better signal.',
  },
  link_dropped: {
    label: 'Link dropped',
    action:
      'The connection was cut part-way (the signal dropped, or the hub restarted); it is being made again by itself. If it keeps happening, restart the router or move the unit for better signal.',
  },
  upload_offset_mismatch: {
    label: 'Upload out of step',
    action:
      'The hub and gateway disagreed about how much of an image had arrived. The gateway resumes from the hub’s offset by itself; tell support if it repeats for the same image.',
  },
  decrypt_auth: {
    label: 'Decryption or integrity check failed',
    action:
      'A package could not be decrypted or failed its integrity check at the hub. The gateway sends it once more; if it is refused again the image shows as damaged: send it again from the mammography machine, and tell support.',
  },
  pacs_unreachable: {
    label: 'PACS unreachable',
    action:
      'The hub holds the images safely but cannot reach the PACS. Check the PACS is running and reachable from the hub; the hub retries by itself.',
  },
  pacs_refused: {
    label: 'PACS refused the image',
    action:
      'The PACS answered but did not store the image (the message gives its status and reason). Check the PACS’s log (storage full, credentials, rejected SOP class); after a server error (5xx) the hub tries again by itself.',
  },
  disk_full: {
    label: 'Disk full',
    action:
      'There is no room to keep more images (the message says whether on the gateway or at the hub). Images already received are safe; free space (or replace the disk) before the next patient.',
  },
  modality: {
    label: 'Mammography machine (DICOM)',
    action:
      'The gateway’s own DICOM service did not answer as the machine expects. Restart the gateway; if that does not fix it, run the clinic in manual images mode.',
  },
  unknown: {
    label: 'Unexpected failure',
    action: 'The message gives the detail. Tell support, with the time it happened.',
  },
};

/** A failure as both ends report it: which phase, what happened, and when. */
export interface PhaseFailure {
  phase: FailurePhase;
  message: string;
  at: string;
}

/** A failure in `phase`, now (or at `at`). */
export function phaseFailure(phase: FailurePhase, message: string, at: Date = new Date()): PhaseFailure {
  return { phase, message, at: at.toISOString() };
}

/** The failure as one line, its phase's label first: how logs write it, so a search for the label finds it. */
export function phaseLine(failure: Pick<PhaseFailure, 'phase' | 'message'>): string {
  return `${PHASE_DESCRIPTIONS[failure.phase].label}: ${failure.message}`;
}
