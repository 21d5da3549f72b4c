// Click the cat, see the mask: <segmentkit-overlay> and VisionClient from @segmentkit/components.
import { VisionClient, VisionError, imageFromBlob } from "@segmentkit/components";  // also defines the element
import { useEffect, useMemo, useRef, useState } from "react";
import photo from "../../../core/segmentkit/samples/chelsea.png";

// The address `segmentkit serve --allow-origin <this page's origin>` printed, token included:
// from ?service=... or typed into the field.
const initialService = new URLSearchParams(location.search).get("service") ?? "";

export default function App() {
  const overlay = useRef(null);
  const [service, setService] = useState(initialService);
  const [model, setModel] = useState("classic");
  const [status, setStatus] = useState("Click the cat.");
  const client = useMemo(() => (service ? new VisionClient(service) : null), [service]);
  const image = useMemo(() => fetch(photo).then((r) => r.blob()).then(imageFromBlob), []);

  useEffect(() => {
    const element = overlay.current;
    const onPoint = async ({ detail: point }) => {
      if (!client) {
        setStatus("Paste the URL `segmentkit serve` printed first.");
        return;
      }
      element.prompts = [{ kind: "point", ...point }];
      setStatus("Asking segmentkit…");
      try {
        const { masks } = await client.maskFromPrompt({ image: await image, point, model });
        element.masks = masks.map((m) => ({ rle: m.rle, label: m.label, score: m.score }));
        setStatus(masks.length ? `Mask of ${masks[0].area} pixels.` : "No mask here.");
      } catch (err) {
        setStatus(err instanceof VisionError ? `${err.reason}: ${err.message}` : String(err));
      }
    };
    element.addEventListener("sk-point", onPoint);
    return () => element.removeEventListener("sk-point", onPoint);
  }, [client, image, model]);

  return (
    <main>
      <h1>segmentkit in React</h1>
      <label>
        segmentkit serve URL
        <input value={service} onChange={(e) => setService(e.target.value.trim())}
               placeholder="http://127.0.0.1:8765/?token=…" />
      </label>
      <label>
        Model
        <input value={model} onChange={(e) => setModel(e.target.value.trim())} />
      </label>
      <segmentkit-overlay ref={overlay} src={photo} mode="point" label="the sample photo: a cat" />
      <p role="status" id="status">{status}</p>
    </main>
  );
}
